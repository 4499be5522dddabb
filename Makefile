# Two commands do all the set-up: `make demo` runs the main job, `make test` runs the suite.
# Both create .venv from the repo's own files when it is missing or when setup.cfg changed, and
# are a fast no-op set-up otherwise.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= all,test

.PHONY: demo test bench setup clean
setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m neuron_core.demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q tests

bench: $(STAMP)
	$(BIN)/python bench/bench_core.py

clean:
	rm -rf $(VENV) build *.egg-info
