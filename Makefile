# The README's two commands: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: demo test install install-test lint openapi messages-extract messages-update messages-compile

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Install, migrate ./refuge.db, load demo data and serve on http://127.0.0.1:$(PORT)
## (make demo PORT=8080 for another port)
demo: install
	$(BIN)/refuge serve --demo --port $(PORT)

## Install the test extra and run the whole suite (SQLite, then PostgreSQL when reachable)
test: install-test
	scripts/test

lint: install-test
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

openapi: install
	$(BIN)/refuge openapi

## Translations (service/locale, Babel): extract the English words of the code and templates,
## merge them into the kk/ru/en catalogues, compile the .mo files that are committed.
LOCALE_DIR := service/locale
POT        := $(LOCALE_DIR)/messages.pot

messages-extract: install
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --width=100 \
		--project=Refuge --version=$(shell $(BIN)/python -c 'import service.app as a; print(a.VERSION)') \
		-o $(POT) .

messages-update: messages-extract
	$(BIN)/pybabel update -i $(POT) -d $(LOCALE_DIR) --no-fuzzy-matching --ignore-obsolete \
		--width=100 --ignore-pot-creation-date

messages-compile: install
	$(BIN)/pybabel compile -d $(LOCALE_DIR) --statistics
