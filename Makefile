# Two commands set everything up on a fresh machine (see README.md):
#   make quickstart   install, build the offline data, run the quick-start study, print its table
#   make test         install, check the import layers (pyproject.toml), run the test suite
PYTHON ?= python3
WORKBENCH = $(PYTHON) -m workbench

.PHONY: install quickstart test data

install:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"

data: install
	$(WORKBENCH) data build clipart-web tuxpaint emoji glyphs fashion-mnist digits

quickstart: data
	$(WORKBENCH) study run studies/quickstart.yaml --workers 2

test: install
	$(PYTHON) -c "from importlinter.cli import lint_imports_command; lint_imports_command()"  # the layers
	$(PYTHON) -m pytest -q
