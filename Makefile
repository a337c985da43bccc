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

.PHONY: help serve test lint openapi demo bench venv system-deps clean qgis-plugin test-qgis

help:
	@echo "make serve   start the server on the demo district at http://$(HOST):$(PORT)"
	@echo "make test    run every test (installs what the tests need)"
	@echo "make qgis-plugin  build the QGIS plugin zip ($(DIST)/cut_processing.zip)"
	@echo "make demo | openapi | bench | lint | test-qgis | clean"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 not found (pyenv install 3.12 or set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(STAMP)

# Debian packages the tests use, installed in one go when missing: GDAL's command line tools
# (ogrinfo reads OAPIF), Chromium (renders the HTML pages), python3-qgis (the QGIS plugin and
# QGIS's OAPIF provider), and PostGIS
# for the machine's PostgreSQL (the feature store tests run on PostGIS as well as GeoPackage).
# The job engine's tests also need the machine's PostgreSQL on 127.0.0.1:5432: start it if it
# is installed but not listening.
PG_MAJOR = $(shell ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)
system-deps:
	@missing=""; \
	command -v ogrinfo >/dev/null 2>&1 || missing="$$missing gdal-bin"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	$(QGIS_PYTHON) -c 'import qgis.core, pytest' >/dev/null 2>&1 || missing="$$missing python3-qgis python3-pytest"; \
	if [ -n "$(PG_MAJOR)" ] && [ ! -f /usr/share/postgresql/$(PG_MAJOR)/extension/postgis.control ]; then \
		missing="$$missing postgresql-$(PG_MAJOR)-postgis-3"; fi; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages the tests use:$$missing"; \
		$(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq $$missing >/dev/null; \
	fi
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
	$(BIN)/ruff check src tests bench clients

test: $(STAMP) system-deps
	$(BIN)/ruff check src tests bench clients
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-qgis

# The QGIS plugin's tests: Debian's python3-qgis on the system Python (not the venv), headless,
# against a live server they start with the venv's gunicorn (tests/qgis/conftest.py).
QGIS_PYTHON ?= /usr/bin/python3
test-qgis: $(STAMP) system-deps
	QT_QPA_PLATFORM=offscreen $(QGIS_PYTHON) -m pytest -c tests/qgis/pytest.ini tests/qgis

# The installable QGIS plugin: the plugin folder at the root of the zip
# (QGIS: Plugins > Manage and Install Plugins > Install from ZIP).
DIST ?= dist
qgis-plugin:
	@mkdir -p $(DIST)
	@rm -f $(DIST)/cut_processing.zip
	cd clients/qgis && python3 -c 'import pathlib, sys, zipfile; \
		files = sorted(p for p in pathlib.Path("cut_processing").rglob("*") \
			if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"); \
		zf = zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED); \
		[zf.write(p, p.as_posix()) for p in files]; zf.close()' $(abspath $(DIST))/cut_processing.zip
	@echo "$(DIST)/cut_processing.zip"

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(VAR) .pytest_cache .ruff_cache
