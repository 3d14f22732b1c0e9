# The two set-up commands: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest venv clean system-deps shellcheck conformance ts-sdk bench

# Debian and Ubuntu ship venv/ensurepip in a separate package; fetch it only when missing.
$(BIN)/python:
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { \
		echo "Installing python3-venv from Debian's packages"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when a requirements file or the package metadata changes.
$(STAMP): $(BIN)/python requirements.txt requirements-dev.txt setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

## demo: run the server on the built-in Order Desk sandbox (Ctrl-C stops both).
demo: $(STAMP)
	$(BIN)/orderdesk-mcp demo

## test: lint, type-check, the MCP conformance suite, then the whole pytest suite (last, so
## its summary closes the output).
test: system-deps lint shellcheck typecheck conformance pytest

# nginx, shellcheck and openssl (deployment tests), npm (conformance, TypeScript SDK),
# chromium with its driver (the browser sign-in test), redis-server and postgresql (the
# scale-out tests) and prometheus (promtool checks the alert rules) from Debian's packages
# when missing; apt-get update runs only then, and sudo only when not root. The tests start
# their own servers on loopback, so the packaged services are switched off.
SYSTEM_TOOLS := nginx:nginx shellcheck:shellcheck openssl:openssl npm:npm \
	chromium:chromium chromedriver:chromium-driver redis-server:redis-server \
	promtool:prometheus
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
		tool=$${pair%%:*}; pkg=$${pair#*:}; \
		PATH="$$PATH:/usr/sbin:/sbin" command -v $$tool >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "Installing from Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing && \
		for unit in nginx redis-server prometheus prometheus-node-exporter postgresql; do \
			$(SUDO) systemctl disable --now $$unit >/dev/null 2>&1 || true; \
		done; \
	fi

shellcheck: system-deps
	shellcheck scripts/*.sh .ci/run

lint: $(STAMP)
	$(BIN)/ruff check orderdesk_mcp tests scripts
	$(BIN)/ruff format --check orderdesk_mcp tests scripts

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) ts-sdk
	$(BIN)/pytest -q

## ts-sdk: the official MCP TypeScript SDK, pinned, into .tools/ (the OAuth end-to-end test
## drives it; first run fetches Node 22 and the SDK with npm).
ts-sdk:
	scripts/install-ts-sdk.sh

## conformance: the official MCP conformance suite against `serve --local` (first run fetches
## Node 22 and the pinned suite into .tools/ with npm).
conformance: $(STAMP)
	PYTHON=$(BIN)/python scripts/conformance.sh

## bench: our server against the official SDK's server on loopback (about 9 minutes; never
## part of `make test`), then upstream requests per workflow, cross-tenant latency under a
## burst, a Redis server group's upstream efficiency and several serve processes on one host;
## prints tables and writes docs/bench/latest.json, workflows.json, fairness.json,
## group_upstream.json and multiprocess.json.
bench: $(STAMP)
	$(BIN)/python -m scripts.bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
