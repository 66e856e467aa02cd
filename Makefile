# Two commands on a fresh machine (see README):
#   make run    installs everything and runs the service on its embedded default
#   make test   installs everything and runs the whole test suite
PYTHON ?= python3.11
VENV   ?= .venv
ORT    ?= cpu
# Installed without its dependencies (they are pinned in pyproject's `insightface` extra).
INSIGHTFACE ?= insightface==2.1
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The suite's real services (README, "Tests").
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/kiosk
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/0

.PHONY: install run test lint browser-deps services bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

install: $(PY)
	$(PY) -m pip install --quiet -e ".[$(ORT),test,insightface]"
	$(PY) -m pip install --quiet --no-deps $(INSIGHTFACE)

run: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py migrate --noinput
	@# The demo kiosk's one-time enrolment link: open it once in the kiosk's browser.
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py kiosk_enrol demo --base-url http://$(HOST):$(PORT)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(VENV)/bin/daphne -b $(HOST) -p $(PORT) kiosk.asgi:application

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser-deps:
	@command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }

lint: install
	$(VENV)/bin/ruff check .

test: install browser-deps lint
	KIOSK_EMBEDDED=1 DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) \
	  $(VENV)/bin/pytest $(PYTEST_ARGS)

bench: install
	$(PY) bench/latency.py
