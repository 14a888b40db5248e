# The README's two commands. Both bootstrap .venv from a fresh clone; rerunning is a no-op.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXPERIMENT ?= configs/experiments/default.yaml

.PHONY: train test readme benchmark clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/python train.py $(EXPERIMENT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Regenerates the models table in README.md from the configs.
readme: $(STAMP)
	$(BIN)/python -m zoo models --update-readme README.md

clean:
	rm -rf $(VENV) runs
