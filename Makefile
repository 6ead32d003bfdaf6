# vehicle-data. `make run` serves on http://localhost:8080; `make test` runs every test.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/vehicle-data
# Fuzz targets run briefly in `make test`; raise for a real fuzzing session. A count, not a
# duration: with a duration, Go's fuzzing coordinator can fail a target with a bare "context
# deadline exceeded" as the time runs out (golang/go#75804; it happened in CI, no input found).
FUZZTIME ?= 50000x

.PHONY: standby-lag bench-list run build test test-unit fuzz faults generate check-generated lint vet bench bench-ingest bench-export bench-smoke bench-replicas deps postgres clean

run: postgres build ## serve with the embedded PostgreSQL unless DATABASE_URL is set
	./$(BIN) serve

build:
	$(GO) build -o $(BIN) ./cmd/vehicle-data

# Debian packages the project needs: PostgreSQL's server binaries for the embedded database
# (and psql, which it pulls in, for the benchmarks), and nginx, the proxy of the fault suite's
# replicas. Neither package's own service is wanted: create_main_cluster = false keeps
# PostgreSQL's from making and starting a cluster; a policy-rc.d answering 101 ("forbidden")
# while apt runs keeps nginx's from starting on port 80 (unless the machine has a policy of
# its own), and a newly installed nginx is not enabled at boot. The tests run their own nginx.
DEPS_APT := postgresql nginx
deps: ## install the Debian packages the project needs (apt-get; CI calls it)
	@command -v apt-get >/dev/null || { echo "no apt-get: install $(DEPS_APT) yourself, or set DATABASE_URL" >&2; exit 1; }
	@echo "installing Debian packages: $(DEPS_APT)"
	mkdir -p /etc/postgresql-common/createcluster.d
	echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/50-vehicle-data.conf
	@set -e; \
	had_nginx=$$(dpkg-query -W -f='$${Status}' nginx 2>/dev/null | grep -c 'ok installed' || true); \
	policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
		policy=/usr/sbin/policy-rc.d; printf '#!/bin/sh\nexit 101\n' > $$policy; chmod 755 $$policy; \
	fi; \
	trap '[ -z "$$policy" ] || rm -f "$$policy"' EXIT; \
	apt-get install -y -q --no-install-recommends $(DEPS_APT) || { apt-get update -q && apt-get install -y -q --no-install-recommends $(DEPS_APT); }; \
	if [ "$$had_nginx" = 0 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
		systemctl disable --now --quiet nginx || true; \
	fi

# make run on a fresh machine: the embedded database needs PostgreSQL's binaries, so run
# `make deps` when they are missing (and DATABASE_URL does not point elsewhere).
postgres:
	@if [ -z "$$DATABASE_URL" ] && ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "PostgreSQL's binaries are missing; running make deps"; \
		$(MAKE) --no-print-directory deps; \
	fi

test: ## every test: unit, integration (real PostgreSQL), brief fuzzing and the fault suite
	$(GO) test -count=1 -race ./...
	$(MAKE) fuzz
	$(MAKE) faults

fuzz:
	@set -e; for spec in \
		"./internal/timeparse FuzzParseFile" \
		"./internal/timeparse FuzzParseQuery" \
		"./internal/records FuzzParseOrdering" \
		"./internal/records FuzzDecodeJSON" \
		"./internal/export FuzzContentDisposition" \
		"./internal/csvrows FuzzReader"; do \
		set -- $$spec; echo "fuzz $$2 ($$1, $(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$2$$" -fuzztime=$(FUZZTIME) $$1; \
	done

# The fault suite (internal/faults, build tag faults, so not part of `make test`): builds the
# real binary and runs it against a PostgreSQL it stops and restarts, checking the contract's
# "Load, limits and faults" on loopback; about 4 minutes. Every test logs one "FAULTS ..." line
# of figures. FAULTS_SOAK=20s shortens the soak; FAULTS_RUN=Soak picks tests.
FAULTS_RUN ?= .
faults:
	$(GO) test -tags faults -count=1 -v -timeout 15m -run '$(FAULTS_RUN)' ./internal/faults

# Regenerate everything under gen/ from openapi.yaml, db/migrations and db/queries.
generate:
	rm -rf gen/db
	$(GO) tool sqlc generate
	$(GO) tool oapi-codegen -config gen/api/config.yaml openapi.yaml
	$(GO) tool oapi-codegen -config gen/client/config.yaml openapi.yaml
	$(GO) run ./cmd/specgen -spec openapi.yaml -out gen/api
	$(MAKE) web-generate
	$(MAKE) ui-generate

check-generated: generate
	@git diff --exit-code -- gen/ || { echo "gen/ differs from a fresh 'make generate': commit the regenerated code" >&2; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- gen/)" || { git status --porcelain -- gen/; echo "untracked files under gen/" >&2; exit 1; }

vet:
	$(GO) vet ./...

# vet, gofmt and staticcheck (pinned as a tool in go.mod) over the hand-written code; gen/ is
# machine-written and left out.
LINT_PKGS = $$($(GO) list ./... | grep -v '/gen/')
lint: vet
	@test -z "$$(gofmt -l cmd internal db)" || { gofmt -l cmd internal db; echo "gofmt needed" >&2; exit 1; }
	$(GO) tool staticcheck $(LINT_PKGS)
	$(GO) vet -tags faults ./internal/faults
	$(GO) tool staticcheck -tags faults ./internal/faults

bench: bench-ingest bench-export

bench-ingest: build
	$(GO) run ./cmd/vehicle-data-bench ingest

bench-export: build
	$(GO) run ./cmd/vehicle-data-bench export

# Reads at fleet scale: 10 vehicles x 1M samples (about 6 min to load), then the list and series
# mixes through the server against pgbench of the same SQL. BENCH_LIST_FLAGS=--reuse keeps the
# loaded database for the next run (with --database-url, on that server).
bench-list: build
	$(GO) run ./cmd/vehicle-data-bench list $(BENCH_LIST_FLAGS)

# Capacity (docs/scaling.md): on bench-list's database, 1, 2 and 3 replicas behind nginx (the
# configuration of internal/nginxconf) under the list mix, an ingest mix of small uploads and
# both at once, with the CPU time of each kind of process; about 6 minutes after the load.
bench-replicas: build
	$(GO) run ./cmd/vehicle-data-bench replicas $(BENCH_LIST_FLAGS)

# Both benchmarks end to end on a small file (builds the server, starts PostgreSQL): a smoke
# test of the benchmark tooling, kept out of `make test` by its build tag.
bench-smoke:
	$(GO) test -count=1 -tags benchsmoke -run '^Test(RunSmall|ReplicasSmall)$$' ./cmd/vehicle-data-bench/...

# Reads on a standby: how far a loopback pg_basebackup standby falls behind under a finalize of
# STANDBY_LAG_ROWS (200000) rows, and how soon a create is readable there (README, "Reads on a
# standby"). Kept out of make test by its build tag.
standby-lag:
	$(GO) test -count=1 -tags standbylag -run '^TestStandbyLag$$' -v ./cmd/vehicle-data/

clean:
	rm -rf bin

# --- web (dashboard, TypeScript client, Postman, Spectral, Swagger UI) ---
# npm tooling under web/, every version pinned in web/package-lock.json. `make generate` runs
# web-generate, so gen/ts is drift-checked with the Go code.
.PHONY: web-deps web-generate ui-generate postman lint-spec web-test

# npm ci only when node_modules is missing or older than the lock file.
WEB_DEPS := web/node_modules/.package-lock.json
$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && npm ci

web-deps: ## (re)install web/'s locked npm packages
	cd web && npm ci

web-generate: $(WEB_DEPS) ## gen/ts/schema.d.ts from openapi.yaml (openapi-typescript)
	bash web/scripts/generate-ts.sh

ui-generate: $(WEB_DEPS) ## the dashboard (web/ui, Vite) into gen/ui, embedded by the binary; prints the gzipped sizes
	bash web/scripts/build-ui.sh

postman: $(WEB_DEPS) ## Postman collection from openapi.yaml into web/build/postman; runs it with newman when VEHICLE_DATA_URL is set
	bash web/scripts/postman.sh

lint-spec: $(WEB_DEPS) ## Spectral on openapi.yaml (spectral:oas + .spectral.yaml): no error, no warning
	cd web && npx --no-install spectral lint --ruleset ../.spectral.yaml --fail-severity=warn ../openapi.yaml

web-test: ## Spectral, TS type-check and smoke test, Postman/newman, Swagger UI e2e against a live server
	bash web/scripts/ci.sh
