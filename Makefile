# Two commands matter: `make run` (set up and serve) and `make test` (set up and test everything).
# Both are idempotent and work on a fresh clone: they create .venv with a Python >= 3.12.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test setup serve-setup lint format check-deploy bench golden clean

$(STAMP): requirements.txt requirements-dev.txt
	@boot=$$(sh scripts/find-python.sh) || { \
	  echo "ERROR: no Python >= 3.12 found (Django 6.1 needs it)."; \
	  echo "       Install one (e.g. 'pyenv install 3.13') or set PYTHON=/path/to/python3.12+."; exit 1; }; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
	  rm -rf $(VENV); echo "Creating $(VENV) with $$boot"; $$boot -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

.env:
	@$(PY) scripts/make_env.py

setup: $(STAMP) .env

serve-setup: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0

run: serve-setup
	@echo "Serving lorasite on http://127.0.0.1:$(PORT)/"
	$(VENV)/bin/gunicorn lorasite.wsgi --config lorasite/gunicorn.conf.py --bind 127.0.0.1:$(PORT)

test: setup
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	  echo "Chromium found: browser tests will run."; \
	else \
	  echo "######################################################################"; \
	  echo "# WARNING: no 'chromium' on PATH: the browser tests will be SKIPPED.  #"; \
	  echo "# Install it (apt-get install chromium) to run tests/browser/.       #"; \
	  echo "######################################################################"; \
	fi
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run --settings lorasite.settings_test
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check-deploy: setup
	DEBUG=0 SECURE_SSL=1 CACHE_URL=redis://127.0.0.1:6379/1 SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	  ALLOWED_HOSTS=lorasite.example.com $(PY) manage.py check --deploy --fail-level WARNING

bench: serve-setup
	$(PY) benchmarks/bench_http.py
	$(PY) benchmarks/bench_permalink.py

# Regenerates the golden files of tests/core/golden/ with the real libraries (torch, transformers, peft,
# bitsandbytes) in their own Python 3.11 venv (torch 2.13.0's CPU wheel); about 20 minutes on 2 cores, plus about
# 70 for the 2026 families (issue 7: small configs, inventories, PEFT grid, memory measurements, self-check).
VAL_VENV ?= validation/.venv
VAL_PY := $(VAL_VENV)/bin/python

$(VAL_VENV)/.installed: validation/requirements.txt
	@py=$$(command -v python3.11 || ls -d $$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/3.11*/bin/python3 2>/dev/null | tail -1); \
	  test -n "$$py" || { echo "ERROR: the validation scripts need Python 3.11 (torch 2.13.0 wheel)."; exit 1; }; \
	  $$py -m venv $(VAL_VENV)
	$(VAL_PY) -m pip install --quiet -r validation/requirements.txt
	@touch $@

golden: $(VAL_VENV)/.installed
	$(VAL_PY) validation/check_presets.py
	$(VAL_PY) validation/peft_golden.py
	$(VAL_PY) validation/measure_memory.py
	$(VAL_PY) validation/measure_adapter_file.py
	$(VAL_PY) validation/small_configs.py --check
	$(VAL_PY) validation/inventory.py
	$(VAL_PY) validation/peft_golden_2026.py
	$(VAL_PY) validation/measure_memory_2026.py
	$(VAL_PY) validation/golden_summary.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
