# berth — common tasks. The README's two commands (scripts/demo.sh and
# scripts/test.sh) do the host set-up as well; these targets assume it is done.
GO ?= go

.PHONY: build test test-short bench fuzz lint
build:
	$(GO) build -o bin/ ./cmd/berth ./cmd/berth-logdriver

test:
	bash scripts/test.sh

test-short:
	$(GO) test -short ./...

# Runs every benchmark and rewrites BENCHMARKS.md (needs root: real containers).
bench: build
	$(GO) run ./bench/cmd/berthbench -berth bin/berth -out BENCHMARKS.md

# Fuzz each parser for a while (the seed corpora also run in `make test`).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./internal/protocol/ -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./internal/ecs/ -run '^$$' -fuzz FuzzParseTaskSize -fuzztime $(FUZZTIME)
	$(GO) test ./internal/logs/ -run '^$$' -fuzz FuzzParsePattern -fuzztime $(FUZZTIME)

lint:
	gofmt -l $$(git ls-files '*.go')
	$(GO) vet ./...
