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
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check-deploy: setup
	DEBUG=0 SECURE_SSL=1 SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	  ALLOWED_HOSTS=lorasite.example.com $(PY) manage.py check --deploy --fail-level WARNING

bench: serve-setup
	$(PY) benchmarks/bench_http.py

# Regenerates the PEFT golden file; needs the torch venv described in validation/README.md.
golden:
	$(MAKE) -C validation golden

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
