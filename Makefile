# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=
# pytest-xdist workers (one per core by default): the suite is mostly numba compilation and
# single-threaded checks; on 2 cores with an empty numba cache 2 workers took 260-280 s, one
# process 450 s (2026-12-03)
PYTEST_WORKERS ?= auto

.PHONY: demo test bench crossval-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# One stamp per extras set: reinstall only when setup.cfg changes.
$(VENV)/.stamp-test: setup.cfg pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[test,report,dist]"
	touch $@

$(VENV)/.stamp-demo: setup.cfg pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[report,dist]"
	touch $@

# The crossval extra pins torch==2.13.0 (a CPU build); it also satisfies the test stamp.
$(VENV)/.stamp-crossval: setup.cfg pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[test,report,dist,crossval]"
	touch $@ $(VENV)/.stamp-test

demo: $(VENV)/.stamp-demo
	$(VENV)/bin/evsnn demo

test: $(VENV)/.stamp-test
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

crossval-deps: $(VENV)/.stamp-crossval

bench: $(VENV)/.stamp-test
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
