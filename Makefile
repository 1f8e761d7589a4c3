# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint bench browser native clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when pyproject.toml changes.
$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.stamp-run

## demo: set up, migrate ./var/qunyun.db, load the demo, serve web + worker on $(HOST):$(PORT)
demo: $(VENV)/.stamp-run
	$(BIN)/qunyun demo --host $(HOST) --port $(PORT)

## test: set up dev tools, compile the engine, lint, type-check, run the whole suite (SQLite,
## PostgreSQL, Redis, browser) on the compiled engine, then the unit tests on the plain one
test: $(VENV)/.stamp-dev browser native
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadfile --cov --cov-report= $(PYTEST_ARGS)
	QUNYUN_PURE=1 $(BIN)/pytest -q tests/unit --cov --cov-append \
	  --cov-report=term:skip-covered

## test-fast: the suite without the slow crash test and the browser
test-fast: $(VENV)/.stamp-dev
	$(BIN)/pytest -m "not slow and not browser" $(PYTEST_ARGS)

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check .
	$(BIN)/mypy

## bench: the outbox benchmark on PostgreSQL (see bench/README.md)
bench: $(VENV)/.stamp-dev
	$(BIN)/python bench/outbox_bench.py

## native: compile the rule engine's hot modules with mypyc (a no-op when they match the build)
native: $(VENV)/.stamp-dev
	$(BIN)/qunyun native build

# Debian's chromium for the browser tests, with a Chinese font (WenQuanYi Micro Hei, 1.6 MB)
# so pages are measured and screenshotted with real CJK glyphs; without root/apt they skip
# with a printed reason.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium fonts-wqy-microhei) >/tmp/qunyun-chromium-install.log 2>&1 \
	      || echo "could not install chromium (see /tmp/qunyun-chromium-install.log): browser tests will skip"; \
	  else echo "chromium missing and apt-get unavailable: browser tests will skip"; fi; \
	fi

clean:
	rm -rf $(VENV) src/qunyun/_native .pytest_cache .mypy_cache .ruff_cache .coverage
