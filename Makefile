# The two set-up-and-go commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint format bench clean chromium resolution

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# the demo, then stop the local Ray and Prefect server it started (genai down)
run: setup
	$(BIN)/genai run; status=$$?; $(BIN)/genai down >/dev/null; exit $$status

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The UI test drives Debian's chromium; install it when missing (root, Debian's registry).
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# pip must resolve without backtracking and without CUDA libraries on a machine without a GPU
resolution: setup
	$(BIN)/python .ci/check_resolution.py

# the resolution check (pip's dry run, ~40 s of waiting on metadata) runs beside the tests; a
# failure of either fails the target, the check's report printed after the tests'
test: lint chromium
	$(BIN)/python .ci/check_resolution.py > $(VENV)/resolution.log 2>&1 & check=$$!; \
	trap 'kill $$check 2>/dev/null' EXIT; \
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=60; status=$$?; \
	wait $$check; resolved=$$?; cat $(VENV)/resolution.log; \
	test $$resolved -eq 0 && exit $$status || exit $$resolved

bench: setup
	$(BIN)/python bench/prepare.py
	$(BIN)/python bench/train_overhead.py
	$(BIN)/python bench/sweep_efficiency.py
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) artifacts .pytest_cache
