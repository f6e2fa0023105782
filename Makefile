# Two commands do all the set-up on a fresh Debian or Raspberry Pi OS machine:
#   make run    install what is missing, then run the appliance on its embedded default
#   make test   install what is missing, then run the test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APP := $(VENV)/bin/rescnn-appliance
ARCH := $(shell uname -m)
# On the Pi the venv sees apt's python3-picamera2 and python3-lgpio.
VENV_FLAGS := $(if $(filter aarch64,$(ARCH)),--system-site-packages,)
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install install-test run test bench models lint soak arm-check clean

$(STAMP): setup.cfg pyproject.toml deploy/apt-deps.sh
	deploy/apt-deps.sh test
	test -x $(PY) || python3 -m venv $(VENV_FLAGS) $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[systemd,train,demo,test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(APP) run $(ARGS)

test: install
	$(PY) -m pytest -q $(ARGS)

bench: install
	$(APP) bench $(ARGS)

models: install
	$(APP) models train-ecnn $(ARGS)
	$(APP) models train-va $(ARGS)
	$(APP) models export

lint: install
	$(PY) -m pip install -q ruff
	$(VENV)/bin/ruff check rescnn_appliance tests benchmarks
	shellcheck deploy/*.sh .ci/run

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

soak: install
	$(PY) benchmarks/soak.py $(ARGS)

arm-check: install
	deploy/arm-check.sh $(ARGS)
