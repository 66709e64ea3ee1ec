# onnx-workbench: install, run and test. Every step a fresh machine needs is here,
# because CI (.ci/run) runs `make test` in a fresh clone.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
HOST ?= 0.0.0.0
PORT ?= 8000
PYTEST_ARGS ?=
# Console scripts land in the interpreter's scripts folder; call them there so that
# a pyenv shim that was not rehashed after the install does not matter.
SCRIPTS := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')

.NOTPARALLEL:  # the test steps depend on each other in order

.PHONY: help install install-test run lint test system-deps node-deps lint-js fixtures clean

help:
	@echo "make run      install and start the web service on http://localhost:$(PORT)"
	@echo "make test     install everything the tests need, fetch fixture models, run pytest"
	@echo "make lint     ruff (lint and format check) and mypy on app/ (make test runs it first)"
	@echo "make install  install the package (editable) with its runtime dependencies"
	@echo "make lint-js  install the front-end packages and run ESLint on app/static/js"

install:
	$(PYTHON) -m pip install -e .

install-test:
	@echo "==> make test: installing the package with its test extras"
	$(PYTHON) -m pip install -e '.[test]'

run: install
	$(SCRIPTS)/onnx-workbench serve --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser tests, Debian's redis-server for the distributed-jobs tests
# (tests/api/test_distributed.py starts its own on a free loopback port) and nginx for the compose
# file's proxy configuration (tests/api/test_docker.py runs it in front of two replicas).
# Never `playwright install`: browser downloads are not possible on these machines, only the
# package registries are.
system-deps:
	@echo "==> make test: system packages (Debian chromium for browser tests, redis-server for distributed jobs, nginx for the compose proxy)"
	@missing=""; \
	if [ -x /usr/bin/chromium ]; then echo "chromium: /usr/bin/chromium present"; else missing="chromium"; fi; \
	if command -v redis-server >/dev/null; then echo "redis-server: $$(command -v redis-server) present"; \
	else missing="$$missing redis-server"; fi; \
	if command -v nginx >/dev/null; then echo "nginx: $$(command -v nginx) present"; \
	else missing="$$missing nginx-light"; fi; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else \
	  echo "WARNING: missing $$missing and we are not root; browser, distributed-jobs or proxy tests cannot run" >&2; \
	fi

node-deps:
	@echo "==> make test: front-end packages"
	@if [ -f package.json ]; then npm ci; else echo "no package.json: no front-end packages to install"; fi

# ESLint on the page's modules (eslint.config.js: the recommended rules, lines <= 120, files <= 450 lines)
lint-js: node-deps
	@echo "==> make test: ESLint on app/static/js"
	npx eslint app/static/js

fixtures:
	@echo "==> make test: fetching the real ONNX fixture models"
	$(PYTHON) -m tests.fixture_models

# ruff and mypy come with the test extras; a finding fails `make test` before pytest starts.
lint: install-test
	@echo "==> make test: ruff and mypy"
	$(PYTHON) -m ruff check app tests bench
	$(PYTHON) -m ruff format --check app tests bench
	$(PYTHON) -m mypy app

test: install-test lint system-deps node-deps lint-js fixtures
	@echo "==> make test: running pytest"
	$(PYTHON) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf build/ *.egg-info .pytest_cache test-artifacts/
