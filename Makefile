# The README's two commands. Both bootstrap .venv from a fresh clone; rerunning is a no-op.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXPERIMENT ?= configs/experiments/default.yaml

.PHONY: train test test-slow bench comparison readme ablations clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,export]'
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/python train.py $(EXPERIMENT)

# Two workers, each taking whole test files (module fixtures are built once), on the 2 cores. The `slow`
# tests (big models, a real dataset prepared, a worker killed among four TensorFlow processes) are left
# to test-slow, which installs the torch extra that the VGG parity tests need: make test stays within 10
# minutes on a 2-core AVX2-only Zen 3.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench,test,export]'
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m slow

# Training speed against PyTorch and the matmul ceiling (benchmarks/run.py), then serving speed: every
# exported format against PyTorch eager at batch 1 and 64 (benchmarks/serving.py), then the torchvision
# weights' parity for every twin (benchmarks/torchvision_parity.py). Run it on an idle machine.
# Installs the optional torch extra first; TFDS_DATA_DIR enables the real-data rows.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench,test,export]'
	$(BIN)/python benchmarks/run.py --json benchmarks/latest.json
	$(BIN)/python benchmarks/serving.py --json benchmarks/serving.json
	$(BIN)/python benchmarks/torchvision_parity.py --json benchmarks/torchvision_parity.json

# The families side by side on CIFAR-10 (docs/comparison/): every CIFAR-10 config with its preset where one
# ships, every export format beside PyTorch eager of the same network, and the equal_budget study's
# columns (make ablations writes them). Run it on an idle machine.
comparison: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench,test,export]'
	$(BIN)/python benchmarks/comparison.py --out docs/comparison --study docs/ablations/equal_budget/results.csv

# Regenerates the models, ImageNet weights and presets tables in README.md from the configs and model cards.
readme: $(STAMP)
	$(BIN)/python -m zoo models --update-readme README.md
	$(BIN)/python -m zoo presets --update-readme README.md

clean:
	rm -rf $(VENV) runs

# Runs the shipped ablations (needs TFDS_DATA_DIR with MNIST and CIFAR-10) and copies their
# reports, as the tool wrote them, into docs/ablations/.
ABLATIONS := lenet5_kernel_stride conv_types stacked_3x3 bottleneck_1x1 transfer_50 transfer_500 recipe resnet20_25epochs equal_budget
ablations: $(STAMP)
	for name in $(ABLATIONS); do \
	  $(BIN)/python train.py configs/ablations/$$name.yaml --workdir runs/ablations/$$name && \
	  mkdir -p docs/ablations/$$name && \
	  cp runs/ablations/$$name/results.md runs/ablations/$$name/results.csv runs/ablations/$$name/*.png docs/ablations/$$name/ \
	  || exit 1; \
	done
