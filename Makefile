# Everything a developer or CI runs goes through these targets; see README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help venv system-deps tools fleet-up fleet-down fleet-status crds lint test test-unit demo demo-down readme bench simulate bench-simulate clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the operator and test dependencies

system-deps:  ## Debian packages the tests need (a real Prometheus for live-demand tests)
	@command -v prometheus >/dev/null || { \
		echo "installing prometheus (Debian package)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }

tools: venv  ## build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, helm (cached)
	$(PY) -m hack.fleet tools

fleet-up: tools  ## start the local fleet (hub + 2 members) under .fleet/
	$(PY) -m hack.fleet up

fleet-down:  ## stop the local fleet
	$(PY) -m hack.fleet down

fleet-status:  ## show the local fleet's processes
	$(PY) -m hack.fleet status

crds: venv  ## regenerate crds/, the chart's CRDs, docs/reference.md and docs/settings.md from the pydantic models
	$(PY) -m aifactory.api.crds --out crds
	$(PY) -m aifactory.api.crds --out charts/aifactory-operator/crds
	$(PY) -m aifactory.api.reference --out docs/reference.md
	$(PY) -m aifactory.api.settings_reference --out docs/settings.md
	$(PY) -m hack.chart

lint: venv  ## ruff and mypy
	$(VENV)/bin/ruff check operator hack tests bench
	$(VENV)/bin/mypy

test-unit: venv  ## pure tests, no fleet
	$(VENV)/bin/pytest -m 'not fleet'

test: tools system-deps lint  ## everything: lint, unit tests and tests against the real local fleet
	$(VENV)/bin/pytest

demo: tools  ## local fleet, operator and samples; waits until settled, prints live vs offline (place --mode operator)
	$(PY) -m hack.demo

demo-down:  ## stop the demo's operator and fleet
	$(PY) -m hack.demo down

readme: tools  ## run README.md and docs/getting-started.md on a fresh fleet (.fleet-docs/) and refresh their outputs
	$(PY) -m hack.docs write

bench: venv  ## placement benchmarks; results go to docs/benchmarks.md
	$(PY) bench/placement.py

SIMULATION_OUT ?= build/simulation

simulate: venv  ## replay 2022 on the sample fleet (samples/simulation/); report in build/simulation/report.html
	$(VENV)/bin/aifactoryctl simulate -f samples/simulation/ \
		--carbon samples/simulation/carbon-2022.csv.gz \
		--start 2022-01-01T00:00Z --end 2023-01-01T00:00Z \
		--out $(SIMULATION_OUT) --report $(SIMULATION_OUT)/report.html
	@echo "report: $(SIMULATION_OUT)/report.html"

bench-simulate: venv  ## time a year of the sample fleet; results go to docs/benchmarks.md
	$(PY) bench/simulate.py

clean: fleet-down
	rm -rf $(VENV) .fleet .fleet-docs
