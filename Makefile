# Two commands: `make demo` and `make test`. Both create .venv on first use.
# `make test-all` adds the long runs (@pytest.mark.slow) after `make test`; .ci/run runs it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-all bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, pinned: on these machines 2.13.0 is a local CPU wheel; any other request pulls CUDA.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[train,profiles]"
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test,train,profiles,ray,rllib,torchrl,tune,stats,simbench]"
	touch $@

# BenchMARL pins an older TorchRL: its test runs in a venv of its own (torch re-pinned: torchvision
# would otherwise pull a CUDA torch)
BM_VENV := .venv-benchmarl
$(BM_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BM_VENV)
	$(BM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BM_VENV)/bin/pip install --quiet torch==2.13.0
	$(BM_VENV)/bin/pip install --quiet -e ".[benchmarl]" "pytest>=8" torch==2.13.0
	touch $@

demo: $(VENV)/.installed
	$(BIN)/p2penv experiment demo

test: $(VENV)/.installed-test $(BM_VENV)/.installed
	$(BIN)/python -m pytest -q -n 2
	$(BM_VENV)/bin/python -m pytest -q tests/test_benchmarl.py

# the slow tests `make test` leaves out: full-size experiment checks and the docs' training snippets
# (the BenchMARL one in its own venv)
test-all: test
	$(BIN)/python -m pytest -q -n 2 -m slow
	$(BM_VENV)/bin/python -m pytest -q -m slow tests/test_docs.py -k benchmarl

bench: $(VENV)/.installed-test
	$(BIN)/p2penv bench

clean:
	rm -rf $(VENV) $(BM_VENV) .pytest_cache .hypothesis
