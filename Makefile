# accelgen: `make demo` and `make test` set everything up on a fresh machine first.
VENV ?= .venv
BIN := $(VENV)/bin
export VENV

.PHONY: setup demo test test-slow bench clean

setup:
	@./tools/setup.sh

# Generate the 8x8 WS demo accelerator, then run two real conv layers on it in Icarus, checked
# bit-exactly against the numpy golden model, with random AXI-Stream backpressure.
demo: setup
	$(BIN)/accelgen generate specs/ws_8x8.toml -o build/ws_8x8
	$(BIN)/accelgen simulate specs/ws_8x8.toml --layer lenet5:conv2 --seed 1 --backpressure 0.1
	$(BIN)/accelgen simulate specs/ws_8x8.toml --seed 2 --random-bias \
	    --layer "C=16,H=14,W=14,K=16,R=3,S=3,stride=1,pad=1"

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2

test-slow: setup
	$(BIN)/python -m pytest -q -n 2 -m slow

bench: setup
	$(BIN)/python bench/spine.py

clean:
	rm -rf build .pytest_cache
