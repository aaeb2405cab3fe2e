# Two commands do all the set-up on a fresh machine (see README.md):
#   make report   install into .venv, then run refopt's main job (the verdict report)
#   make test     install into .venv, then run the test suite (what .ci/run runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Optional backends and frameworks are extras; the tests skip (with a reason) what is absent.
EXTRAS ?= test,docs,numba,torch,jax,dask,compare,conformance,real
# Public packages run by tests/test_conformance.py that cannot be an extra (see pyproject.toml).
NODEPS ?= timm==1.0.31
CONSTRAINTS ?= .ci/constraints.txt
# The test files run in parallel, one file per worker (pytest-xdist; module fixtures such as the
# compiled C port are built once per file). `make test PYTEST_ARGS=` runs them one after another.
PYTEST_ARGS ?= -n auto --dist loadfile

.PHONY: install report test docs gpu-check

$(BIN)/.installed: pyproject.toml setup.py Makefile $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		$(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[$(EXTRAS)]"
	$(if $(NODEPS),$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		$(NODEPS))
	touch $@

install: $(BIN)/.installed

report: install
	$(BIN)/refopt report

# pytest exits 5 when it collects no test: for this suite that means a broken setup, so say so.
test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: the suite is misconfigured" >&2; exit 1; fi; \
	exit $$status

# The documentation site into site/ (strict: a warning or a broken link fails; see mkdocs.yml).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

# On a CUDA machine whose python3 already has numpy, CuPy, pytest, matplotlib and mpmath (torch
# optional; the lent GPU machines reach no package index, so nothing is installed): the CuPy tests
# (GPU, host C++ and nvcc layers), then the GPU benchmark, into GPU_OUT.
# Commit $(GPU_OUT)/bench_gpu.json and .png (they name the device) and gpu_tests.log.
GPU_OUT ?= figures
gpu-check:
	@mkdir -p $(GPU_OUT)
	@PYTHONPATH=$(CURDIR) $(PYTHON) -c "import sys; from refopt.kernels.cupy_backend import \
		cupy_unavailable_reason as why; r = why(); sys.exit(r and 'gpu-check: ' + r)"
	@PYTHONPATH=$(CURDIR) $(PYTHON) -m pytest -p no:cacheprovider -rs -q \
		tests/test_kernels_cupy.py > $(GPU_OUT)/gpu_tests.log 2>&1; status=$$?; \
		cat $(GPU_OUT)/gpu_tests.log; exit $$status
	PYTHONPATH=$(CURDIR) PYTHONUNBUFFERED=1 $(PYTHON) -m refopt.kernels.bench --backends cupy \
		--out $(GPU_OUT)
