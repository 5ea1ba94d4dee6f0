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
# book took 37 minutes this way against 51 one chapter and one run at a time (single replicates).
# With three replicates of every judged deep-model experiment it took 51.5 minutes, and 29-32
# minutes once a chapter started its long runs first, two chapters shared the runs they both
# ask for and the cpu scale dropped the unjudged extra lambda (2026-12-01); 44:51 with the
# StyleGAN2 chapter (755 of 4,744 run-seconds) on a day the same runs took 1.35-1.74x longer;
# 40:27 (4,163 run-seconds) with SDE-DPM-Solver++ sampling, no DDPM lambda 0.8 at the cpu scale,
# three flow replicates, 30 StyleGAN2 epochs and equal training steps for the fresh-data DDPM
# (2026-12-02 afternoon, when the unchanged book took 43:10); 26:37 (2,621 run-seconds) with a
# 30-pass DDPM, which lost the E5 verdict, and 32:39 (3,253) with 45 passes and the mitigations
# chapter (2026-12-03); that afternoon, on a machine where the same DDPM runs took 1.35x as long,
# 46:22 (4,855) with three more DDPM mitigations and 40:54 (4,152) with only the verified one at
# the cpu scale and 20 StyleGAN2 epochs; 32:20 (3,435) with every DDPM mitigation at three
# replicates that evening, on an Intel Xeon with AMX (bf16), and 40:01 (4,304) an hour later on
# the same machine with generation 1's samples shared, every model's runs 1.25x as long.
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
