# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast install clean

run: $(STAMP)
	@test -f .env || $(BIN)/tweetbot init
	@$(BIN)/tweetbot run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

# The inner loop: everything but the tests marked slow (soaks, tortures, real-process and browser runs).
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -m "not slow" --durations=10 $(PYTEST_ARGS)

install: $(STAMP)

# pip's output goes to $(VENV)/install.log, shown only when the install fails: the first screen of
# `make run` is for the admin password and the way to the command line.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing tweetbot into $(VENV) (pip's output: $(VENV)/install.log)"
	@{ $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -e '.[dev]'; } \
		> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; echo "make: the install failed (above)"; exit 1; }
	@touch $(STAMP)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
