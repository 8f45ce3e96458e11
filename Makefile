# Every target installs what it needs: the virtualenv, the project and the Kafka jars.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCAL_KAFKA := deploy/kafka/local-kafka
PYTEST_ARGS ?=

.PHONY: help install demo test unit lint format kafka-start kafka-stop clean

help:
	@echo "make demo         the whole pipeline on the embedded default, checked end to end"
	@echo "make test         install, start the local Kafka broker if none is configured, run every test"
	@echo "make unit         run the unit tests only (no services)"
	@echo "make lint         ruff and mypy (strict on our packages)"
	@echo "make kafka-start  start the local broker on 127.0.0.1:9092 (kafka-stop stops it)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "make: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,demo]'
	@touch $@

install: $(STAMP)

# Starts the local broker unless one answers, runs everything, stops what it started.
demo: $(STAMP)
	$(LOCAL_KAFKA) resolve
	$(BIN)/aiusage demo

# The test harness (tests/services.py) starts the local broker when no broker is
# configured and stops only what it started; the jars are resolved here, up front.
test: $(STAMP)
	@if [ -z "$$AIUSAGE_TEST_KAFKA_BOOTSTRAP" ]; then $(LOCAL_KAFKA) resolve; fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

kafka-start:
	$(LOCAL_KAFKA) start

kafka-stop:
	$(LOCAL_KAFKA) stop

clean:
	-$(LOCAL_KAFKA) stop
	rm -rf $(VENV) .aiusage .pytest_cache .mypy_cache .ruff_cache .hypothesis
