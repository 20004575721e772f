# Two commands from a fresh clone: `make demo` and `make test` (each sets up .venv on first use).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENARIO ?= include/scenarios/bodea.yaml

.PHONY: demo test test-distributed up down emulators validate explain explain-account explain-segment lock clean

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

test-distributed: $(STAMP)  ## the pipeline on CeleryExecutor (Redis at 127.0.0.1:6379, PostgreSQL metadata), two workers, one killed mid-task
	$(BIN)/python -m pytest -m distributed tests/distributed

up: $(STAMP)  ## a local Airflow (api-server, scheduler, dag-processor, triggerer) on the embedded warehouse, with the emulators
	$(BIN)/python -m b2b_cdp.localstack up --scenario $(SCENARIO)

down: $(STAMP)  ## stop what `make up` started
	$(BIN)/python -m b2b_cdp.localstack down

emulators: $(STAMP)  ## Marketo and Salesforce emulators on SCENARIO, in the foreground
	$(BIN)/python -m emulators --scenario $(SCENARIO) --state-dir build/emulators

validate: $(STAMP)  ## validate the configuration and run its guardrail checkpoints
	$(BIN)/python -m b2b_cdp validate

# After `make demo` (or with AIRFLOW_CONN_CDP_WAREHOUSE set): SANDBOX=<platform_instance>/<name> picks a
# sandbox (default: the configuration's first), JSON=1 prints JSON. Values reach the command through
# the environment, so any character in an email or a name is safe.
EXPLAIN = $(BIN)/python -m b2b_cdp explain --scenario "$(SCENARIO)" $(if $(SANDBOX),--sandbox "$$SANDBOX") $(if $(JSON),--json)

explain: $(STAMP)  ## explain the person(s) an email identifies: make explain EMAIL=p2@townsend.com
	@test -n "$$EMAIL" || { echo "usage: make explain EMAIL=address [SANDBOX=instance/name] [JSON=1]" >&2; exit 2; }
	@$(EXPLAIN) --email "$$EMAIL"

explain-account: $(STAMP)  ## explain an account (id, source key, MDM id or name): make explain-account ACCOUNT=Townsend
	@test -n "$$ACCOUNT" || { echo "usage: make explain-account ACCOUNT=id|key|mdm-id|name [SANDBOX=instance/name] [JSON=1]" >&2; exit 2; }
	@$(EXPLAIN) --account "$$ACCOUNT"

# AS_OF=<ISO date-time> overrides the evaluation time (default: the segment's latest evaluation).
explain-segment: $(STAMP)  ## why a person (or, in an account audience, an account) is in or out: make explain-segment SEGMENT=id EMAIL=address|ACCOUNT=ref
	@test -n "$$SEGMENT" -a -n "$$EMAIL$$ACCOUNT" || { echo "usage: make explain-segment SEGMENT=id EMAIL=address|ACCOUNT=id|key|mdm-id|name [AS_OF=iso] [SANDBOX=instance/name] [JSON=1]" >&2; exit 2; }
	@$(BIN)/python -m b2b_cdp explain-segment --scenario "$(SCENARIO)" --segment "$$SEGMENT" $(if $(EMAIL),--email "$$EMAIL") $(if $(ACCOUNT),--account "$$ACCOUNT") $(if $(AS_OF),--as-of "$$AS_OF") $(if $(SANDBOX),--sandbox "$$SANDBOX") $(if $(JSON),--json)

lock:  ## regenerate requirements.txt (the full lock) from requirements.in
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet -r requirements.in
	build/lock-venv/bin/python -m pip freeze --exclude-editable > requirements.txt

clean:
	rm -rf build
