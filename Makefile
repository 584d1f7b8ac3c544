# accelgen: `make demo` and `make test` set everything up on a fresh machine first.
VENV ?= .venv
BIN := $(VENV)/bin
export VENV

.PHONY: setup demo test test-units test-slow bench formal clean

setup:
	@./tools/setup.sh

# Generate the 8x8 WS demo accelerator, run a real conv layer on it in Icarus with random
# AXI-Stream backpressure, checked bit-exactly against the numpy golden model; then the digits CNN
# (models/digits_cnn_int8.onnx) end to end on its RTL on a handful of test images: accuracy, and
# every tensor against onnxruntime.
demo: setup
	$(BIN)/accelgen generate specs/ws_8x8.toml -o build/ws_8x8
	$(BIN)/accelgen simulate specs/ws_8x8.toml --layer lenet5:conv2 --seed 1 --backpressure 0.1
	$(BIN)/python tools/digits_data.py --count 6 -o build/digits
	$(BIN)/accelgen run specs/ws_8x8.toml models/digits_cnn_int8.onnx --input build/digits/x.npy \
	    --labels build/digits/labels.npy --check --output build/digits/probabilities.npy

# the hardware unit tier (Amaranth simulator, under a minute) first, then everything else
test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -x tests/test_hw_*.py
	$(BIN)/python -m pytest -q -n 2 --ignore-glob='tests/test_hw_*.py'

test-units: setup
	$(BIN)/python -m pytest -q tests/test_hw_*.py

test-slow: setup
	$(BIN)/python -m pytest -q -n 2 -m slow

# Bounded SymbiYosys proofs of the generated top's stream and bus protocols (sim/formal.py)
formal: setup
	$(BIN)/python bench/formal.py --ci

bench: setup
	$(BIN)/python bench/spine.py

clean:
	rm -rf build .pytest_cache
