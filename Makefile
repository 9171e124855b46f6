# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch/torchvision are pinned here only for this project's own machines, where pip reads them
# from local disk; the package itself declares open ranges (pyproject.toml).
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
DEMO_DIR ?= runs/demo

.PHONY: demo test lint venv clean

$(BIN)/genzoo: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/genzoo

venv: $(BIN)/genzoo

demo: venv
	bash scripts/demo.sh $(BIN) $(DEMO_DIR)

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf runs .pytest_cache
