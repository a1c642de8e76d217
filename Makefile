# asiclab: the two README commands are `make reproduce` and `make test`.
# Both create .venv if it is missing, install the project and its dependencies from pyproject.toml
# with pip, and register the Jupyter kernel "asiclab" for that environment.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.asiclab-installed
PARAMS ?= notebooks/params/default.yaml
ARGS   ?=

.PHONY: all setup reproduce test lab bench lint clean-runs figures

all: test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# PUF metric cross-check (tests/puf): pypuf 3.2.1 pins tensorflow 2.4, so --no-deps; optional
	-$(BIN)/python -m pip install --quiet --no-deps pypuf==3.2.1
	$(BIN)/python -m ipykernel install --sys-prefix --name asiclab --display-name "Python (asiclab)" >/dev/null
	@touch $(STAMP)

setup: $(STAMP)

## Re-execute every notebook with papermill on the built-in default data.
reproduce: $(STAMP)
	$(BIN)/asiclab reproduce --params $(PARAMS) $(ARGS)

## The figures and their gallery figures/index.html, re-executing only notebooks whose
## parameters or inputs changed since an earlier run (the run cache, asiclab reproduce --cache).
figures: $(STAMP)
	$(BIN)/asiclab reproduce --params $(PARAMS) --cache $(ARGS)
	@echo "gallery: figures/index.html"

## Run the test suite (includes every notebook with quick parameters).
test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

## JupyterLab on notebooks/ with the asiclab kernel.
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS)

## Benchmarks: print speed and memory figures.
bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check lib tests benchmarks

clean-runs:
	find papermill_runs figures -mindepth 1 ! -name README.md -exec rm -rf {} +
