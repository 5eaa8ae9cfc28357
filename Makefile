# Two commands for a fresh machine (README): `make demo` and `make test`.
# Everything installs from the lock file; the only prerequisite is python3.11 with venv and pip.
SHELL := /bin/bash
PYTHON ?= python3.11
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
export UV_PYTHON := $(PYTHON)
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export LITELLM_LOCAL_MODEL_COST_MAP := True
export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC := 1

.PHONY: setup bwrap browser github-api demo test check fmt bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --extra claude-code --extra scanners --quiet
	@touch $@

# bubblewrap (Debian) is the agent sandbox, and Claude Code's command sandbox needs it with socat; installed
# when the machine allows it (root with apt-get).
bwrap:
	@{ command -v bwrap && command -v socat ; } >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] \
		&& command -v apt-get >/dev/null 2>&1 \
		&& (apt-get update -qq && apt-get install -y -qq bubblewrap socat >/dev/null) ; } \
		|| echo "note: bubblewrap/socat are not installed; the bwrap sandbox is unavailable (agents.sandbox: none)"

setup: .venv/.synced bwrap

# Debian's chromium and chromedriver drive the browser test of the Prefect UI (tests/server): test tools' own
# browser downloads fail here (ARCHITECTURE.md §9). Installed when the machine allows it (root with apt-get).
browser:
	@{ command -v chromium && command -v chromedriver ; } >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] \
		&& command -v apt-get >/dev/null 2>&1 \
		&& (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) ; } \
		|| echo "note: chromium/chromedriver are not installed; the browser test skips outside CI (fails with CI=true)"

## The main job on embedded defaults, offline: bootstrap the bundled review report, then its status.
demo: setup
	$(UV) run --frozen --no-sync scripts/demo

## GitHub's OpenAPI description and recorded fixtures (npm), which judge the github forge's fake GitHub in tests.
github-api: tests/github_api/node_modules/.installed

tests/github_api/node_modules/.installed: tests/github_api/package.json tests/github_api/package-lock.json
	cd tests/github_api && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

## Set up, then the whole check: format, lint, types, import contracts, tests.
test: setup github-api browser check

check:
	$(UV) run --frozen --no-sync scripts/check

## Benchmarks print their figures (bench/README.md).
bench: setup
	$(UV) run --frozen --no-sync python -m bench.agent_overhead

fmt: setup
	$(UV) run --frozen --no-sync ruff format .
	$(UV) run --frozen --no-sync ruff check --fix .

clean:
	rm -rf .venv $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
