# The README's commands. Each target sets up what it needs in .venv first.
#   make book        execute every notebook at the cpu scale (on a local cluster of one worker
#                    per core) and build the site into _build/html
#   make test        run the test suite (fast default selection)
#   make test-slow   the long statistical checks too
#   make lint        ruff on the package, tests, benchmarks, notebooks and book scripts
#   make bench       run every benchmark (minutes; writes benchmarks/results/)
#
# On a machine without an NVIDIA GPU the install is pinned to the local CPU build of torch
# through constraints-cpu.txt; with `nvidia-smi` present it is left to pip (CUDA wheels).
# Override with `make test TORCH_CONSTRAINT=` (none) or `TORCH_CONSTRAINT="-c file"`.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_CONSTRAINT ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,-c constraints-cpu.txt)
PYTEST_ARGS ?=

SCALE ?= cpu
# Worker processes of the book's local Dask cluster: one per usable core. Measured on a 2-core
# machine (benchmarks/results/sweep.md), 2 single-threaded workers ran two cpu-scale DDPM runs
# 1.35x and two mixture runs 1.53x faster than one process with 2 torch threads (1.49x and
# 1.55x would be ideal), and 3.4-3.8x faster while another process kept a core busy; the cpu
# book took 37 minutes this way against 51 one chapter and one run at a time. Every measured
# build of the book since: benchmarks/results/book_time.md.
# `make book BOOK_WORKERS=` runs sequentially.
BOOK_WORKERS ?= $(shell nproc 2>/dev/null || echo 1)

.PHONY: setup book test test-slow lint bench clean

$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_CONSTRAINT) -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

book: setup
	$(VENV)/bin/madutils book --scale $(SCALE) $(if $(BOOK_WORKERS),--workers $(BOOK_WORKERS),)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -m "slow or not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check madutils tests benchmarks notebooks book
	$(VENV)/bin/ruff format --check madutils tests benchmarks notebooks book

bench: setup
	cd benchmarks && for script in bench_*.py; do ../$(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache _build book/executed
