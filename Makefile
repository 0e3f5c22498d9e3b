# Two commands set everything up on a fresh machine (see README.md):
#   make quickstart   install, build the offline data, run the quick-start study, print its table
#   make test         install (PostgreSQL too, for the shared-store tests), check the import layers, run the tests
PYTHON ?= python3
WORKBENCH = $(PYTHON) -m workbench
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install quickstart test data postgres

install:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"

data: install
	$(WORKBENCH) data build clipart-web tuxpaint emoji glyphs fashion-mnist digits

quickstart: data
	$(WORKBENCH) study run studies/quickstart.yaml --workers 2

# The shared-store tests (tests/study/test_workers.py) start a real PostgreSQL server on loopback.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql)

test: install postgres
	$(PYTHON) -c "from importlinter.cli import lint_imports_command; lint_imports_command()"  # the layers
	$(PYTHON) -m pytest -q
