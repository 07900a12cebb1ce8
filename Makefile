# Chaski — build, run and test.
GO      ?= go
BIN     ?= bin/chaski
FUZZTIME ?= 20s
PKGS    := ./...

.PHONY: all build run test vet lint vulncheck race bench bench-compare profile fuzz demo clean tools

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

## test: go vet and staticcheck, then every test with the race detector
test: vet lint
	$(GO) test -race -timeout 15m $(PKGS)

# bench/ is a module of its own (it imports internal/bench/stats through a
# replace): vet it too, so that it never falls behind the main go.mod.
vet:
	$(GO) vet $(PKGS)
	cd bench && $(GO) vet ./...

## lint: staticcheck (pinned, installed into the git-ignored .tools/)
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := .tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck
lint: $(STATICCHECK)
	$(STATICCHECK) $(PKGS)
$(STATICCHECK):
	GOBIN=$(CURDIR)/$(dir $(STATICCHECK)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## vulncheck: govulncheck (pinned) against the Go vulnerability database;
## fails on a finding, only warns when the database cannot be reached
GOVULNCHECK_VERSION ?= v1.9.0
GOVULNCHECK := .tools/govulncheck-$(GOVULNCHECK_VERSION)/govulncheck
vulncheck: $(GOVULNCHECK)
	@$(GOVULNCHECK) $(PKGS); rc=$$?; \
	if [ $$rc -eq 3 ]; then echo "vulncheck: vulnerabilities found"; exit 3; fi; \
	if [ $$rc -ne 0 ]; then echo "vulncheck: could not complete (offline? vuln.go.dev unreachable): skipped"; fi
$(GOVULNCHECK):
	GOBIN=$(CURDIR)/$(dir $(GOVULNCHECK)) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

## bench: the Go benchmarks (codec, ping, messages, files, dashboard)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./chaski/... ./tui/

## bench-compare: Chaski vs NATS vs raw TCP in one run (see docs/PERFORMANCE.md)
bench-compare: build tools
	./bench/compare.sh

## profile: CPU and allocation profiles of every process of the hot paths
## (messages direct and through a root, a 1 GiB file) into prof/, with the
## top functions of each as text (PROFILE_DIR: where the file is written)
PROFILE_DIR ?= $(shell [ -w /dev/shm ] && echo /dev/shm || echo /tmp)
profile: build
	rm -rf prof && mkdir -p prof/messages prof/root prof/files
	CHASKI_BENCH_PROFILE=prof/messages $(BIN) bench --quiet --mode messages --count 3000000
	CHASKI_BENCH_PROFILE=prof/root $(BIN) bench --quiet --mode messages --via-root --count 3000000
	CHASKI_BENCH_PROFILE=prof/files $(BIN) bench --quiet --mode files --file-size 1GiB --dir $(PROFILE_DIR)
	@for f in prof/*/*.cpu.pprof; do $(GO) tool pprof -top -nodecount=30 $(BIN) $$f > $${f%.pprof}.txt 2>/dev/null; done
	@for f in prof/*/*.allocs.pprof; do $(GO) tool pprof -sample_index=alloc_space -top -nodecount=15 $(BIN) $$f > $${f%.pprof}.txt 2>/dev/null; done
	@echo "profiles and their top functions: prof/*/ (go tool pprof -http=: $(BIN) prof/messages/sub.cpu.pprof)"

## tools: benchmark-only tools (nats-server, the nats CLI) into the git-ignored .tools/
NATS_VERSION ?= v2.15.2
NATSCLI_VERSION ?= v0.5.0
tools: .tools/nats-server .tools/nats
.tools/nats-server:
	GOBIN=$(CURDIR)/.tools $(GO) install github.com/nats-io/nats-server/v2@$(NATS_VERSION)
.tools/nats:
	GOBIN=$(CURDIR)/.tools $(GO) install github.com/nats-io/natscli/nats@$(NATSCLI_VERSION)

## fuzz: every fuzz target for FUZZTIME each (seed corpora also run in `make test`)
fuzz:
	@set -e; for pkg in ./chaski ./chaski/wire ./chaski/pki ./chaski/nearby ./tui; do \
	  for target in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin prof
