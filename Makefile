# order-up: every command works on a fresh clone; the first one installs what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json
BIN := node_modules/.bin
SPEC := openapi/order-up.yaml
GENERATED := src/generated/order-up.ts

.PHONY: help install build run test test-unit test-file lint format lint-spec check-generated gen typecheck bench docs mock clean

help:
	@echo "make run    - install, build and serve on http://127.0.0.1:8888 (embedded PostgreSQL, simulated upstreams)"
	@echo "make test   - install and run every check and test (embedded PostgreSQL unless DATABASE_URL is set)"
	@echo "make lint   - Prettier's check, ESLint (type-aware) and the layer rules (eslint.config.js)"
	@echo "make format - apply Prettier's formatting and ESLint's automatic fixes"
	@echo "make test-unit - the unit tests only (test/unit: no database, a few seconds)"
	@echo "make build  - compile; afterwards 'npx order-up <command>' works"
	@echo "make bench  - benchmarks: request path against two baselines, charge pipeline (BENCH=request or charge: one)"
	@echo "make docs   - static, self-contained API reference in docs/index.html (open it in a browser)"
	@echo "make mock   - Prism mock of the API on http://127.0.0.1:4010 (docs/frontend-guide.md)"
	@echo "make gen    - regenerate $(GENERATED) from $(SPEC)"

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(NPM_STAMP)

gen: install
	$(BIN)/openapi-typescript $(SPEC) -o $(GENERATED)

# Generated types are never edited by hand: fail when they differ from what the spec generates.
check-generated: install
	@tmp=$$(mktemp --suffix=.ts) && $(BIN)/openapi-typescript $(SPEC) -o $$tmp >/dev/null 2>&1 && \
	if ! diff -q $$tmp $(GENERATED) >/dev/null; then \
	  echo "$(GENERATED) is out of date with $(SPEC): run 'make gen' and commit it"; diff -u $(GENERATED) $$tmp | head -40; rm -f $$tmp; exit 1; \
	fi; rm -f $$tmp; echo "generated types match $(SPEC)"

# Formatting (.prettierrc.json), then ESLint: type-aware rules, and the layers and no import cycles
# (the table in eslint.config.js; test/layers.test.ts shows an upward import failing).
lint: install
	$(BIN)/prettier --check .
	$(BIN)/eslint --max-warnings=0 .

format: install
	$(BIN)/prettier --write .
	$(BIN)/eslint --fix .

lint-spec: install
	$(BIN)/redocly lint --format=stylish $(SPEC) openapi/charge-service.yaml openapi/fulfillment-service.yaml

typecheck: install
	$(BIN)/tsc --noEmit -p tsconfig.json

# Compiles only when a source changed since the last build, and then only what changed
# (tsconfig.build.json: incremental, its state in dist/.tsbuildinfo); `make clean` starts over.
BUILD_STAMP := dist/.tsbuildinfo
BUILD_SOURCES := $(shell find src cli -name '*.ts') mikro-orm.config.ts tsconfig.json tsconfig.build.json

$(BUILD_STAMP): $(NPM_STAMP) $(BUILD_SOURCES)
	$(BIN)/tsc -p tsconfig.build.json
	@touch $@

build: $(BUILD_STAMP)

# test/unit only: no database, no server (jest.config.js's `unit` project); `make test` runs them too.
test-unit: install
	node --experimental-vm-modules node_modules/jest/bin/jest.js --selectProjects unit $(JEST_ARGS)

# Some test files of either project, without the checks: make test-file JEST_ARGS=test/charge.test.ts
test-file: install
	node --experimental-vm-modules node_modules/jest/bin/jest.js $(JEST_ARGS)

test: lint lint-spec check-generated typecheck build
	node --experimental-vm-modules node_modules/jest/bin/jest.js --ci $(JEST_ARGS)

run: build
	node bin/order-up.js serve --simulate-upstreams

# BENCH=request or BENCH=charge runs only that one (test/bench/request-path.ts, charge-pipeline.ts).
bench: build
	@case "$(BENCH)" in ''|request|charge) ;; *) echo "BENCH=$(BENCH): use BENCH=request or BENCH=charge, or neither for both"; exit 2;; esac
	$(BIN)/tsc -p tsconfig.bench.json
	[ "$(BENCH)" = charge ] || node dist/test/bench/request-path.js
	[ "$(BENCH)" = request ] || node dist/test/bench/charge-pipeline.js

# The page GET /docs serves (same Redoc, same options), as a single self-contained file with the
# Redoc bundle and the spec inlined (no CDN): works offline and from file://. Generated, not committed
# (see .gitignore). test/docs-render.test.ts renders both in Chromium.
docs: build
	node scripts/build-docs.mjs docs/index.html

mock: install
	$(BIN)/prism mock $(SPEC) --host 127.0.0.1 --port 4010

clean:
	rm -rf dist
