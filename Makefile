# Chaski — build, run and test.
GO      ?= go
BIN     ?= bin/chaski
FUZZTIME ?= 20s
PKGS    := ./...

.PHONY: all build run test vet race bench bench-compare fuzz demo clean tools

all: build

## build: compile the chaski binary into bin/
build:
	$(GO) build -o $(BIN) .

## run: start the dashboard (a node with a live terminal UI)
run:
	$(GO) run . tui $(ARGS)

## demo: the dashboard with three in-process peers chatting on loopback
demo:
	$(GO) run . tui --demo

## test: go vet, then every test with the race detector
test: vet
	$(GO) test -race -timeout 15m $(PKGS)

vet:
	$(GO) vet $(PKGS)

## bench: the Go benchmarks (codec, ping, messages, files, dashboard)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./chaski/... ./tui/

## bench-compare: Chaski vs NATS vs raw TCP in one run (see docs/PERFORMANCE.md)
bench-compare: build tools
	./bench/compare.sh

## tools: benchmark-only tools (nats-server) into the git-ignored .tools/
NATS_VERSION ?= v2.15.2
tools: .tools/nats-server
.tools/nats-server:
	GOBIN=$(CURDIR)/.tools $(GO) install github.com/nats-io/nats-server/v2@$(NATS_VERSION)

## fuzz: every fuzz target for FUZZTIME each (seed corpora also run in `make test`)
fuzz:
	@set -e; for pkg in ./chaski/wire ./chaski/pki ./tui; do \
	  for target in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin
