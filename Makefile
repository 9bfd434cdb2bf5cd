# Two commands do everything on a fresh machine: `make test` and `make demo`.
# Both create the virtualenv, install the Debian packages and the package itself when they
# are missing, and are fast the second time (stamp files under .venv/).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_SYS := $(VENV)/.stamp-system
STAMP_PKG := $(VENV)/.stamp-package
PYTEST_ARGS ?=

.PHONY: install test demo bench clean-venv

install: $(STAMP_SYS) $(STAMP_PKG)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

$(STAMP_SYS): tools/install_system_deps.sh | $(BIN)/python
	bash tools/install_system_deps.sh
	touch $@

$(STAMP_PKG): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: install
	bash tools/demo.sh

bench: install
	for b in bench/*.py; do case $$b in bench/_*) ;; *) $(BIN)/python $$b || exit 1;; esac; done

clean-venv:
	rm -rf $(VENV)
