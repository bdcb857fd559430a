#!/usr/bin/env bash
# The README's main command: set up this Debian host, build berth, start
# `berth dev` in the background (if it is not already serving), push the demo
# image and run a demo Fargate task through the ECS API.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
bash scripts/setup.sh

DATA="${BERTH_DATA_DIR:-/var/lib/berth}"
LISTEN="${BERTH_LISTEN:-127.0.0.1:4566}"
echo "demo: building bin/berth and bin/berth-logdriver"
go build -o bin/ ./cmd/berth ./cmd/berth-logdriver
B=(./bin/berth --data-dir "$DATA" --endpoint "http://$LISTEN")

if ! curl -fsS "http://$LISTEN/_berth/health" >/dev/null 2>&1; then
  mkdir -p "$DATA"
  echo "demo: starting berth dev (log: $DATA/berth.log)"
  nohup ./bin/berth dev --data-dir "$DATA" --listen "$LISTEN" >"$DATA/berth.log" 2>&1 &
  for _ in $(seq 1 100); do
    curl -fsS "http://$LISTEN/_berth/health" >/dev/null 2>&1 && grep -q "registered with control plane" "$DATA/berth.log" && break
    sleep 0.1
  done
fi
curl -fsS "http://$LISTEN/_berth/health" >/dev/null || { cat "$DATA/berth.log"; exit 1; }

echo "demo: pushing the demo image to berth's registry"
"${B[@]}" image build-demo
echo "demo: running a Fargate task (0.25 vCPU, 512 MiB)"
task=$("${B[@]}" run --wait --cpu 256 --memory 512 "$LISTEN/busybox:latest" \
  sh -c 'echo "hello from a berth task: $(hostname), pid $$, eth0 $(ip -4 -o addr show dev eth0 | sed "s/.*inet \([0-9.\/]*\).*/\1/")"; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status')
"${B[@]}" ps -a | tail -n 3
echo "demo: logs of task $task"
"${B[@]}" logs "$task"
cat <<MSG

berth dev keeps running in the background (stop it with: pkill -f 'berth dev --data-dir $DATA').
Use the AWS CLI against it:
  eval "\$(cat $DATA/env)"
  aws --endpoint-url \$AWS_ENDPOINT_URL ecs list-tasks --cluster default --desired-status STOPPED
MSG
