# Two commands do everything on a fresh machine: `make test` and `make demo`.
# Both create the virtualenv, install the Debian packages and the package itself when they
# are missing, and are fast the second time (stamp files under .venv/).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_SYS := $(VENV)/.stamp-system
STAMP_PKG := $(VENV)/.stamp-package
STAMP_JIT := $(VENV)/.stamp-precompile
PYTEST_ARGS ?=

.PHONY: install test demo bench clean-venv

install: $(STAMP_SYS) $(STAMP_PKG) $(STAMP_JIT)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

$(STAMP_SYS): tools/install_system_deps.sh | $(BIN)/python
	bash tools/install_system_deps.sh
	touch $@

$(STAMP_PKG): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# compile the numba kernels into their on-disk cache now (as Kaldi's `make` builds its binaries), not at
# their first call inside a recipe or a live decoder, one process per CPU (-j); after a source edit only
# the edited modules' kernels compile again (the others load from the cache in ~2 s). A failed compile
# stops make here (the stamp is not made).
$(STAMP_JIT): $(STAMP_PKG) $(wildcard kaldilite/*.py kaldilite/*/*.py)
	$(BIN)/python -m kaldilite.precompile
	touch $@

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: install
	bash tools/demo.sh

# the benches that need nothing prepared; the others (a recipe build, a slice, arguments) are listed with
# what they need (bench/_list.py) and run by hand
bench: install
	@$(BIN)/python bench/_list.py --needs
	benches=$$($(BIN)/python bench/_list.py) && for b in $$benches; do $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
