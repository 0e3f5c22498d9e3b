# Two commands set everything up on a fresh machine (see README.md):
#   make quickstart   install, build the offline data, run the quick-start study, print its table
#   make test         install, run the test suite
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
	$(PYTHON) -m pytest -q
