# mlops: one-command set-up, run and test.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
TASK ?= census
IMAGE ?= mlops:latest
PYTEST_ARGS ?=

.PHONY: setup run test test-fast bench data image clean help

help:
	@echo "make setup            create $(VENV) with Python 3.10, install pinned dependencies, restore data/"
	@echo "make run TASK=census  run a task's pipeline locally"
	@echo "make test             run the test suite"
	@echo "make data             restore data/ from the DVC remote (dvc pull)"
	@echo "make bench TASK=...   run a benchmark (full data, default budget)"
	@echo "make image            build the pipeline container image (needs Docker)"

setup:
	@set -e; PY310="$$(bash .ci/find-python310)"; \
	echo "Using $$PY310"; \
	if [ ! -x "$(PY)" ]; then "$$PY310" -m venv "$(VENV)"; fi; \
	"$(PY)" -m pip install --quiet --upgrade "pip>=24"; \
	"$(PY)" -m pip install --quiet -c constraints.txt -e ".[test,image]"; \
	"$(PY)" -m pip install --quiet --no-deps -r requirements-nodeps.txt
	@TF_CPP_MIN_LOG_LEVEL=3 "$(PY)" -W ignore -c "import tfx, tensorflow as tf, keras; print('tfx', tfx.__version__, '| tensorflow', tf.__version__, '| keras', keras.__version__)"
	@echo "Restoring data/ from the DVC remote (dvc pull)"; $(VENV)/bin/dvc pull -q

run:
	$(VENV)/bin/mlops run $(TASK)

test:
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-fast:
	$(VENV)/bin/python -m pytest -m "not e2e" $(PYTEST_ARGS)

data:
	$(VENV)/bin/dvc pull

bench:
	$(VENV)/bin/python bench/$(TASK).py

image:
	docker build -f infra/docker/Dockerfile -t $(IMAGE) .

clean:
	rm -rf .mlops build .pytest_cache
