"""What the command-line tests share: a small spec and the one-line error check (the fixture
``spec_file``, this spec written to a file, is in conftest.py)."""

SPEC = """
name = "cli_ws"
[array]
rows = 3
cols = 4
[buffers]
input_depth = 256
weight_depth = 128
output_depth = 64
"""


def err_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]
