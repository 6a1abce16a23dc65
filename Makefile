# Two commands set up and run everything: `make run` and `make test`.
# Each creates .venv from the exact pins in constraints.txt on first use (Python 3.11+ only).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

export PREFECT_HOME ?= $(CURDIR)/warehouse/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export PREFECT_LOGGING_LEVEL ?= WARNING
export DO_NOT_TRACK ?= 1

.PHONY: run test soak lint bench constraints clean-venv

$(STAMP): constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode \
	    -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bellwether run --source sample

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

soak: $(STAMP)  ## the kill-and-resume soak test (SIGKILL at 20 random points), about 10 minutes
	$(BIN)/python -m pytest -m soak -p no:cacheprovider -s  # -s: print the seed and where each kill landed

lint: $(STAMP)
	$(BIN)/sqlfluff lint sql

bench: $(STAMP)
	$(BIN)/python -m bench.run

constraints:  ## re-pin every dependency of pyproject.toml (runtime and test) to exact versions
	$(BIN)/uv pip compile pyproject.toml --extra test -o constraints.txt --python-version 3.11 --no-header --no-annotate

clean-venv:
	rm -rf $(VENV)
