# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-reliability lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch comes from local disk; install it before anything asks for torch.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[serve,test]'
	touch $(STAMP)

# The web page's 3D view imports three.js, installed from npm at the version pinned in
# recon/api/web/package-lock.json. Without npm (or the registry) all else works, and the page
# says how to enable the view.
WEB := recon/api/web
WEB_STAMP := $(WEB)/node_modules/.installed

$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "note: npm not found; the web page runs without its 3D view (install Node.js and npm, then make setup)"; \
	elif npm ci --prefix $(WEB) --ignore-scripts --no-audit --no-fund; then \
		touch $@; \
	else \
		echo "warning: npm ci failed; the web page runs without its 3D view"; \
	fi

setup: $(STAMP) $(WEB_STAMP)

# Extra options for `recon serve`, e.g. make run SERVE_ARGS="--port 8080 --data-dir /srv/recon".
SERVE_ARGS ?=

run: setup
	$(BIN)/recon serve $(SERVE_ARGS)

test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The reliability suite at full scale, then docs/RELIABILITY.md from what it measured (written
# even when a scenario fails, which it then shows; the target still fails).
test-reliability: setup
	rm -f "$${RECON_RELIABILITY_RESULTS:-build/reliability/results.jsonl}"
	RECON_RELIABILITY_SCALE=full $(BIN)/python -m pytest tests/reliability -m reliability; \
	status=$$?; $(BIN)/python -m tests.reliability.report && exit $$status

bench: setup
	$(BIN)/pip install -q -e '.[bench]'
	# open3d's wheel needs the system libusb; install it when missing (Debian, as root).
	$(BIN)/python -c "import open3d" 2>/dev/null || apt-get install -y -q libusb-1.0-0
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache $(WEB)/node_modules
