# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
WEB_CONCURRENCY ?= 2
# The access log goes to a file, so the terminal shows the URL and key (and errors) apart from it; - for stdout.
ACCESS_LOG ?= instance/access.log

.PHONY: install run test bench lint validate clean

# setup.py builds safetycheck/_shortlist.c: a change to it needs the install again.
$(STAMP): pyproject.toml setup.py safetycheck/_shortlist.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@# safetycheck/_shortlist.c is compiled by the install: say what is missing before pip's long error does.
	@$(PYTHON) -c 'import os, sysconfig; h = os.path.join(sysconfig.get_paths()["include"], "Python.h"); \
		os.path.exists(h) or exit(f"Python headers are needed ({h}); Debian: apt-get install python3-dev")'
	@command -v $${CC:-cc} >/dev/null || { echo "a C compiler is needed; Debian: apt-get install gcc" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

validate: install
	$(PY) -m safetycheck.knowledge

# The web pages need SAFETYCHECK_SECRET_KEY; when it is not set, make run keeps one under instance/ (owner-only).
SECRET_KEY_FILE := instance/secret_key
WITH_SECRET = export SAFETYCHECK_SECRET_KEY="$${SAFETYCHECK_SECRET_KEY:-$$(cat $(SECRET_KEY_FILE))}";

$(SECRET_KEY_FILE):
	@mkdir -p instance
	@umask 077 && $(PY) -c 'import secrets; print(secrets.token_hex(32))' > $@

# Bytecode written ahead, as a wheel install does: with PYTHONDONTWRITEBYTECODE set, every worker start would
# compile the package again (~0.15 s of each start-up).
COMPILE = $(PY) -m compileall -q safetycheck migrations wsgi.py

run: install $(SECRET_KEY_FILE)
	@$(COMPILE)
	$(PY) -m safetycheck.knowledge
	@$(WITH_SECRET) $(VENV)/bin/flask --app wsgi db migrate
	@$(WITH_SECRET) $(VENV)/bin/flask --app wsgi api-key --url http://127.0.0.1:$(PORT) --access-log $(ACCESS_LOG)
	@$(WITH_SECRET) $(VENV)/bin/flask --app wsgi user list
	@$(WITH_SECRET) exec $(VENV)/bin/gunicorn -c gunicorn.conf.py --bind 127.0.0.1:$(PORT) \
		--workers $(WEB_CONCURRENCY) --access-logfile $(ACCESS_LOG) wsgi:app

test: install
	scripts/install-browser.sh
	$(VENV)/bin/ruff check safetycheck tests bench migrations scripts wsgi.py setup.py
	$(PY) -m pytest

bench: install
	@$(COMPILE)
	$(PY) bench/bench.py
	$(PY) bench/http_bench.py
	$(PY) bench/web_bench.py
	$(PY) bench/pg_bench.py

clean:
	rm -rf $(VENV) build *.egg-info
