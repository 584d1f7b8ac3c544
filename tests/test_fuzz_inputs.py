"""The input fuzzing campaign in the default suite (tests/fuzzing.py; bench/fuzz.py runs it at
scale): specs, layer strings, CSV layer tables, CLI arguments, .npy tensors and ONNX models.
Every case: no traceback, a refusal is one line with exit code 2, nothing written outside the
outputs the call named, an invalid value refused and an accepted one passed on unchanged."""

import pytest
from hypothesis import HealthCheck, given, settings

from fuzzing import FAMILIES, stubs

_SETTINGS = settings(max_examples=50, deadline=None, database=None, derandomize=True,
                     suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def _stubbed():
    with stubs():
        yield


def _check(family, case):
    problems = FAMILIES[family][1](case)
    assert not problems, (case, problems)


@_SETTINGS
@given(case=FAMILIES["spec"][0])
def test_fuzz_specs(case):
    _check("spec", case)


@_SETTINGS
@given(case=FAMILIES["layer"][0])
def test_fuzz_layer_strings(case):
    _check("layer", case)


@_SETTINGS
@given(case=FAMILIES["csv"][0])
def test_fuzz_csv_layer_tables(case):
    _check("csv", case)


@_SETTINGS
@given(case=FAMILIES["cli"][0])
def test_fuzz_cli_arguments(case):
    _check("cli", case)


@_SETTINGS
@given(case=FAMILIES["npy"][0])
def test_fuzz_npy_tensors(case):
    _check("npy", case)


@settings(_SETTINGS, max_examples=40)
@given(case=FAMILIES["onnx"][0])
def test_fuzz_onnx_models(case):
    _check("onnx", case)
