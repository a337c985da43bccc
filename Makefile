# Connected Urban Twins processes — every target bootstraps its own virtual environment.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PORT ?= 5000
HOST ?= 127.0.0.1
SEED ?= 42
VENV ?= .venv
VAR ?= var
PYTEST_ARGS ?=

# Python 3.12, as .python-version selects it through pyenv; fall back to any python3.12 on the machine.
PYTHON ?= $(shell (pyenv which python3.12 2>/dev/null || command -v python3.12 2>/dev/null || \
	ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null) | head -n 1)

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Run apt-get as root, or through sudo where there is one.
APT := $(shell [ "$$(id -u)" = 0 ] && echo apt-get || echo sudo apt-get)

.PHONY: help serve test lint openapi demo bench venv system-deps clean

help:
	@echo "make serve   start the server on the demo district at http://$(HOST):$(PORT)"
	@echo "make test    run every test (installs what the tests need)"
	@echo "make demo | openapi | bench | lint | clean"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 not found (pyenv install 3.12 or set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(STAMP)

# Debian packages the tests use: GDAL's command line tools (ogrinfo reads OAPIF).
# The job engine's tests also need the machine's PostgreSQL on 127.0.0.1:5432: start it if it
# is installed but not listening.
system-deps:
	@command -v ogrinfo >/dev/null 2>&1 || { \
		echo "installing gdal-bin (for ogrinfo)"; \
		$(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq gdal-bin >/dev/null; }
	@(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null || { \
		if [ -d /etc/postgresql ] && [ -n "$$(ls /etc/postgresql)" ]; then \
			echo "starting PostgreSQL (for the job store tests)"; \
			$$([ "$$(id -u)" = 0 ] || echo sudo) pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
			for i in $$(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && break; sleep 1; done; \
		else \
			echo "PostgreSQL is not installed: the job store tests on PostgreSQL will skip (fail in CI)"; \
		fi; }

demo: $(STAMP)
	$(BIN)/cut-twin demo --seed $(SEED) --out $(VAR)/demo

openapi: demo
	$(BIN)/cut-twin openapi

serve: $(STAMP)
	$(BIN)/cut-twin serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

test: $(STAMP) system-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(VAR) .pytest_cache .ruff_cache
