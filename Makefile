# The two commands a new machine needs (see README):
#   make demo   installs Centralino and runs the demo on the embedded defaults
#   make test   installs the test tooling and runs the whole test suite
.PHONY: demo test bench lint

demo:
	scripts/bootstrap.sh runtime
	.venv/bin/centralino demo

test:
	scripts/bootstrap.sh dev
	.venv/bin/python -m pytest -ra $(PYTEST_ARGS)

bench:
	scripts/bootstrap.sh dev
	.venv/bin/python -m bench

lint:
	.venv/bin/ruff check gateway speech cti tests bench
