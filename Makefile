# Fresh machine: `make demo` or `make test` (each creates .venv and installs first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# This project's machines keep the four Omniglot zips beside the checkout; elsewhere
# `make data OMNIGLOT_SOURCE=DIR`, or `maml data prepare omniglot` to download them.
OMNIGLOT_SOURCE ?= $(abspath ../shared/data/omniglot)
REQUIREMENTS := requirements/base.txt requirements/rl.txt requirements/dev.txt
# pytest's exit 5 means it collected no test: say so (and fail) rather than pass silently.
PYTEST = MAML_OMNIGLOT_SOURCE=$(OMNIGLOT_SOURCE) $(PY) -m pytest -q --durations=20 tests $(1) \
	|| { status=$$?; [ $$status -ne 5 ] || echo "pytest collected no tests (exit 5)"; exit $$status; }

.PHONY: install data demo test test-fast bench clean

$(STAMP): $(REQUIREMENTS) requirements/nodeps.txt requirements/lock.txt setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(addprefix -r ,$(REQUIREMENTS)) -c requirements/lock.txt
	$(PY) -m pip install -q --no-deps -r requirements/nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

install: $(STAMP)

# Omniglot for TFDS, offline from OMNIGLOT_SOURCE's four zips (the Table 1 scripts need it).
data: install
	$(PY) -m maml_tf.cli data prepare omniglot --from $(OMNIGLOT_SOURCE)

# Quick sinusoid reproduction (5,000 meta-iterations; timing in the README's first lines): PNG + table in runs/demo/.
demo: install
	$(PY) reproduce/fig3_sinusoid.py --preset quick --out runs/demo/fig3_sinusoid --run-dir runs/demo/checkpoints
	@echo "plot: runs/demo/fig3_sinusoid/fig3_curves.png"

# The whole suite, what CI runs (tests marked slow included), slowest 20 listed.
test: install
	$(call PYTEST)

# Everyday work: no meta-training run (tests marked slow deselected).
test-fast: install
	$(call PYTEST,-m "not slow")

# Speed and memory beside the JAX / PyTorch references (needs ../shared/bench, ~20 min, idle machine).
bench: install
	benchmarks/run.sh

clean:
	rm -rf $(VENV) runs .pytest_cache
