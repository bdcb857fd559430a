#!/usr/bin/env bash
# The README's test command: set up this Debian host and run the whole test
# suite — unit tests, fuzz seed corpora, and the end-to-end tests that run
# berth dev for real with containerd, runc and the AWS CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
bash scripts/setup.sh

echo "test: gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...

echo "test: staticcheck"
staticcheck_bin="$(go env GOPATH)/bin/staticcheck"
if ! "$staticcheck_bin" -version 2>/dev/null | grep -q '(0.8.2)'; then
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
"$staticcheck_bin" ./...

echo "test: go test ./..."
# The end-to-end service tests run three at a time (t.Parallel): they mostly
# wait on health checks and rollouts, each in its own berth dev.
go test -count=1 -timeout 25m -parallel 3 ./...
