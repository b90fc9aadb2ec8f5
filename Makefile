# Two commands matter: `make run` and `make test`. `make help` lists the rest.
GO       ?= go
GOFLAGS  ?=
FUZZTIME ?= 30s
VENDOR    = static/vendor
ASSETS    = $(VENDOR)/designsystemet.css $(VENDOR)/designsystemet-theme.css $(VENDOR)/htmx.min.js

.PHONY: help run test assets generate check-generate vet fmt build chromium fuzz soak bench bench-token bench-integrations vuln clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

run: assets ## run the portal on http://127.0.0.1:8080 with its data in ./data
	$(GO) run ./cmd/portal serve

test: assets chromium check-generate vet vuln ## everything CI runs: generated code check, vet, known vulnerabilities, all tests with -race
	PORTAL_BROWSER_TESTS=require $(GO) test -race -count=1 -timeout 25m ./...

build: assets ## build bin/portal
	$(GO) build -o bin/portal ./cmd/portal

assets: $(ASSETS) ## fetch front-end assets from npm into static/vendor

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(VENDOR)/designsystemet.css: node_modules/.package-lock.json
	cp node_modules/@digdir/designsystemet-css/dist/src/index.css $@
$(VENDOR)/designsystemet-theme.css: node_modules/.package-lock.json
	cp node_modules/@digdir/designsystemet-css/dist/theme/designsystemet.css $@
$(VENDOR)/htmx.min.js: node_modules/.package-lock.json
	cp node_modules/htmx.org/dist/htmx.min.js $@

generate: ## regenerate templ code
	$(GO) tool templ generate -path templates

check-generate: ## fail when committed templ output is stale
	@tmp=$$(mktemp -d) && cp -r templates $$tmp/ && \
	$(GO) tool templ generate -path $$tmp/templates >/dev/null 2>&1 && \
	if ! diff -r -q templates $$tmp/templates >/dev/null; then \
		diff -r templates $$tmp/templates | head -20; rm -rf $$tmp; \
		echo "generated templ code is stale: run 'make generate' and commit the result"; exit 1; \
	fi; rm -rf $$tmp

vet: ## go vet and gofmt check
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

fmt: ## format Go and templ files
	gofmt -w $$(git ls-files '*.go')
	$(GO) tool templ fmt templates

chromium: ## install Debian's chromium for the browser tests when missing
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo "installing chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

SOAK_CYCLES ?= 300
soak: ## kill the portal with SIGKILL at random moments SOAK_CYCLES times (default 300; PORTAL_CRASH_SEED replays a run) and check nothing acknowledged is lost
	PORTAL_CRASH_CYCLES=$(SOAK_CYCLES) $(GO) test -race -count=1 -timeout 90m -run '^TestCrash$$' -v ./cmd/portal/

BENCH_OUT      ?= bench/out
BENCH_BROWSE   ?= 150s
BENCH_SESSIONS ?= 16
BENCH_ARGS     ?=
bench: ## seed 10,000 integrations and 1,000,000 audit events, load the running portal and its simulators, write BENCH_OUT/report.md and latency.png (about 6 minutes)
	$(GO) build -o bin/portal ./cmd/portal
	$(GO) run ./bench/load --portal bin/portal --out $(BENCH_OUT) --browse $(BENCH_BROWSE) --sessions $(BENCH_SESSIONS) $(BENCH_ARGS)

BENCH_DURATION ?= 10s
BENCH_TOKENS   ?= 0
bench-token: ## load the simulated token endpoint (1, 16, 64 clients; BENCH_DURATION per level, BENCH_TOKENS caps each level)
	$(GO) build -o bin/portal ./cmd/portal
	$(GO) run ./bench/tokenload --portal bin/portal --duration $(BENCH_DURATION) --tokens $(BENCH_TOKENS)

bench-integrations: ## the integrations list over 10,000 mirrored clients (p50/p95 per query, /healthz baseline) and a full sync of 10,000 clients
	$(GO) test -run '^$$' -bench IntegrationList -benchtime 400x ./web/
	$(GO) test -run '^$$' -bench Sync10k -benchtime 3x ./internal/clients/

GOVULNCHECK_VERSION = v1.9.0
vuln: ## govulncheck (pinned) on code we call; says so and skips when its database cannot be reached
	@$(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	@out=$$(mktemp); \
	if "$$($(GO) env GOPATH)/bin/govulncheck" ./... >$$out 2>&1; then cat $$out; rm -f $$out; \
	elif grep -q '^govulncheck: fetching vulnerabilities' $$out; then \
		echo "govulncheck: skipped, its vulnerability database cannot be reached from here:"; tail -1 $$out; rm -f $$out; \
	else cat $$out; rm -f $$out; echo "govulncheck found vulnerabilities in code the portal calls"; exit 1; fi

clean: ## remove build output (not ./data)
	rm -rf bin node_modules $(VENDOR)/*.css $(VENDOR)/*.js
