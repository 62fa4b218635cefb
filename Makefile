# The two commands of the README:
#   make train   set up everything, then train SmolLM2-135M on the maze (CPU is fine)
#   make test    set up everything, then run the whole test suite
VENV ?= .venv
BIN := $(VENV)/bin
SETUP_STAMP := $(VENV)/.agentgym-setup

.PHONY: setup train test bench clean

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml scripts/setup.sh $(wildcard scripts/setup/*.sh)
	bash scripts/setup.sh
	touch $@

train: setup
	$(BIN)/agentgym train configs/maze.yaml $(ARGS)

test: setup
	$(BIN)/python -m pytest -q -ra $(ARGS)

bench: setup
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
