# Developer entry points. `make run` starts the app offline; `make test` installs
# what the tests need (idempotently) and runs ruff, mypy and pytest.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?=
DATA_DIR ?= .devhost

# Debian packages the tests need, installed with apt-get when missing and running
# as root: the OCI registry that stands in for ACR, skopeo to push test images,
# chromium for the browser tests (driven by Playwright), and prometheus, run as a child
# process (sandbox/prometheus.py) to scrape the stand-ins and answer analysis queries.
DEB_PACKAGES ?= docker-registry skopeo chromium prometheus

# Stamps live inside the directories they describe, so deleting one resets it.
VENV_STAMP := $(VENV)/.requirements.stamp
# checkov has its own venv: it pins an older pycep-parser than requirements-dev.txt.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.requirements.stamp
PATH_STAMP := $(VENV)/.project-path.stamp
NODE_STAMP := node_modules/.package.stamp

.PHONY: help run push demo test lint bench deps deb-packages clean distclean

help:
	@echo "make run    - start the whole product locally (FRESH=1 wipes $(DATA_DIR) first)"
	@echo "make push   - push a version into it: make push SERVICE=delivery VERSION=1.0.1 (or SERVICE=web)"
	@echo "make demo   - a guided release: QA, approval, prod, then a rollback; then web's canary and blue-green"
	@echo "make test   - install test dependencies (venv, npm, Debian) and run ruff, mypy, checkov and pytest"
	@echo "make lint   - ruff check . and mypy (settings in pyproject.toml)"
	@echo "make bench  - run the benchmarks under bench/, each against its baseline"
	@echo "make clean  - remove caches and devhost data; distclean also .venv, .venv-checkov and node_modules"

# The whole product (sandbox/stack.py) with its state in $(DATA_DIR); Ctrl-C stops it.
# PORT picks the app's port (default 7071 when free); FRESH=1 wipes $(DATA_DIR) first;
# LOG_LEVEL=debug adds the Azure SDKs' HTTP requests to the devhost log.
RUN_DEB_PACKAGES := docker-registry skopeo prometheus
run: $(VENV_STAMP) $(PATH_STAMP) $(NODE_STAMP)
	@$(MAKE) --no-print-directory deb-packages DEB_PACKAGES="$(RUN_DEB_PACKAGES)"
	$(PY) -m sandbox.run --data-dir $(DATA_DIR) $(if $(PORT),--port $(PORT)) $(if $(FRESH),--fresh) \
	  $(if $(LOG_LEVEL),--log-level $(LOG_LEVEL))

# Into the stack `make run` runs: CRASH_IN=prod makes that version crash in production;
# ERRORS=0.2 LATENCY_MS=300 make its stand-in services fail that share of requests, slowly.
push: $(VENV_STAMP) $(PATH_STAMP)
	@test -n "$(SERVICE)" -a -n "$(VERSION)" \
	  || { echo "usage: make push SERVICE=delivery|web VERSION=1.0.1 [CRASH_IN=prod] [ERRORS=0.2] [LATENCY_MS=300]" >&2; exit 2; }
	$(PY) -m sandbox push $(SERVICE) $(VERSION) --data-dir $(DATA_DIR) $(if $(CRASH_IN),--crash-in $(CRASH_IN)) \
	  $(if $(ERRORS),--errors $(ERRORS)) $(if $(LATENCY_MS),--latency-ms $(LATENCY_MS))

# Against the stack of $(DATA_DIR) when one runs, else a fresh one of its own.
demo: $(VENV_STAMP) $(PATH_STAMP) $(NODE_STAMP)
	@$(MAKE) --no-print-directory deb-packages DEB_PACKAGES="$(RUN_DEB_PACKAGES)"
	$(PY) -m sandbox demo --data-dir $(DATA_DIR)

# checkov over infra/ offline (--skip-download); CKV_PARSE_ERROR_FAIL makes a Bicep file it
# cannot parse fail the run instead of being left out.
test: deps $(CHECKOV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	CKV_PARSE_ERROR_FAIL=true $(CHECKOV_VENV)/bin/checkov -d infra --framework bicep \
	  --skip-download --compact --quiet
	$(PY) -m pytest

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: deps
	$(PY) bench/devhost.py
	$(PY) bench/promotion.py
	$(PY) bench/deploy.py
	$(PY) bench/helm.py
	$(PY) bench/ingest.py
	$(PY) bench/release.py
	$(PY) bench/analysis.py
	$(PY) bench/telemetry.py

deps: $(VENV_STAMP) $(PATH_STAMP) $(NODE_STAMP) deb-packages

# Create the venv if needed; reinstall only when a requirements file changed.
$(VENV_STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-checkov.txt
	@touch $@

# The project folder on the venv's sys.path (a .pth file), so `.venv/bin/python -m devhost`
# (or sandbox, releasectl) works from any folder. The path is relative to site-packages:
# a venv linked into several checkouts finds each checkout's own code.
$(PATH_STAMP): | $(VENV_STAMP)
	$(PY) -c 'import os, sysconfig; site = sysconfig.get_paths()["purelib"]; \
	  open(os.path.join(site, "release-workflow.pth"), "w").write(os.path.relpath("$(CURDIR)", site) + "\n")'
	@touch $@

# npm packages go into ./node_modules; install only when missing or package.json changed.
$(NODE_STAMP): package.json $(wildcard package-lock.json)
	@command -v npm >/dev/null || { echo "npm is required (apt-get install -y npm)" >&2; exit 1; }
	npm install --no-audit --no-fund
	@touch $@

deb-packages:
	@missing=""; \
	for pkg in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q "install ok installed" \
	    || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install -y$$missing)" >&2; \
	  exit 1; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q || echo "apt-get update failed; trying the cached package lists" >&2; \
	apt-get install -y -q --no-install-recommends $$missing

clean:
	rm -rf $(DATA_DIR) .pytest_cache .ruff_cache .mypy_cache .hypothesis
	find . -path ./$(VENV) -prune -o -path ./node_modules -prune -o \
	  -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules
