# Two commands from a fresh clone: `make demo` and `make test` (each sets up .venv on first use).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENARIO ?= include/scenarios/bodea.yaml

.PHONY: demo test emulators validate lock clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)  ## the whole pipeline on SCENARIO through Airflow; writes build/demo/report.json
	$(BIN)/python -m b2b_cdp demo --scenario $(SCENARIO)

test: $(STAMP)  ## the test suite (starts its own warehouse and emulators)
	$(BIN)/python -m pytest

emulators: $(STAMP)  ## Marketo and Salesforce emulators on SCENARIO, in the foreground
	$(BIN)/python -m emulators --scenario $(SCENARIO) --state-dir build/emulators

validate: $(STAMP)  ## validate the configuration and run its guardrail checkpoints
	$(BIN)/python -m b2b_cdp validate

lock:  ## regenerate requirements.txt (the full lock) from requirements.in
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet -r requirements.in
	build/lock-venv/bin/python -m pip freeze --exclude-editable > requirements.txt

clean:
	rm -rf build
