# Fresh machine: `make demo` or `make test` (each creates .venv and installs first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-all bench clean

$(STAMP): requirements/base.txt requirements/nodeps.txt requirements/lock.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/base.txt -c requirements/lock.txt
	$(PY) -m pip install -q --no-deps -r requirements/nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

install: $(STAMP)

# Quick sinusoid reproduction (5,000 meta-iterations; timing measured in the README's first lines): PNG + table in runs/demo/.
demo: install
	$(PY) reproduce/fig3_sinusoid.py --preset quick --out runs/demo/fig3_sinusoid --run-dir runs/demo/checkpoints
	@echo "plot: runs/demo/fig3_sinusoid/fig3_curves.png"

# The test suite CI runs (tests marked slow included; they fit CI's 90 minutes).
test: install
	$(PY) -m pytest -q tests

# Speed and memory beside the JAX / PyTorch references (needs ../shared/bench, ~20 min, idle machine).
bench: install
	benchmarks/run.sh

clean:
	rm -rf $(VENV) runs .pytest_cache
