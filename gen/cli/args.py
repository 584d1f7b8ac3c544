"""Argument types and checks shared by the commands: every invalid value is refused with one
line naming the option, never replaced by a default, and every output path is checked before the
work starts (its folder is created, as ``generate`` and ``show`` always did)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import AccelgenError

__all__ = ["int_at_least", "positive_float", "probability", "abs_path", "prepare_output",
           "load_npy", "Parser", "SPEC_HELP", "POSITIVE", "NONNEG", "layer_options"]

SPEC_HELP = "spec TOML file, or the name of a shipped spec (e.g. ws_8x8; see specs/)"


def int_at_least(low: int):
    """An argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {low}, not {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def probability(text: str) -> float:
    """A stall probability in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1), not {text!r}") \
            from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1), not {text}")
    return value


def abs_path(text: str) -> Path:
    """A path made absolute now, so tools that run elsewhere (the simulator) find it."""
    if not text:
        raise argparse.ArgumentTypeError("must be a path, not empty")
    return Path(text).expanduser().resolve()


def prepare_output(path, what: str, suffixes: tuple[str, ...] = ()) -> Path:
    """Check an output file before any work: a known suffix, not a folder, and a folder that
    exists (created if needed) and is writable. Returns the path."""
    path = Path(path).expanduser()
    if suffixes and path.suffix.lower() not in suffixes:
        raise AccelgenError(f"{what} {path} must end in {' or '.join(suffixes)}, not "
                            f"{path.suffix or 'no extension'!r}")
    if path.is_dir():
        raise AccelgenError(f"{what} {path} is a folder; give a file name")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AccelgenError(f"cannot create the folder {parent} for {what} {path}: "
                            f"{e.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise AccelgenError(f"cannot write {what} {path}: the folder {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise AccelgenError(f"cannot write {what} {path}: the file is read-only")
    return path


def load_npy(path: str, what: str):
    import numpy as np
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise AccelgenError(f"{what} file {path} not found") from None
    except IsADirectoryError:
        raise AccelgenError(f"{what} file {path} is a folder, not a .npy file") from None
    except (ValueError, OSError, EOFError) as e:
        raise AccelgenError(f"{what} file {path} is not a readable .npy array ({e})") from None


POSITIVE, NONNEG = int_at_least(1), int_at_least(0)


class Formatter(argparse.HelpFormatter):
    """Help text with each option's default where it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("%(default)" not in text and action.option_strings and default is not None
                and default is not False and default is not argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, exit 2, like every other user error
        print(f"accelgen: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def layer_options(p):
    """The layer options shared by simulate and fpga run."""
    p.add_argument("--layer", help="layer shape 'C=..,H=..,W=..,K=..,R=..,S=..,stride=..,pad=..' "
                                   "or a workload name like resnet18:conv2_x (random tensors)")
    p.add_argument("--input", help="activations, NCHW .npy (integers in the spec's precision)")
    p.add_argument("--weights", help="weights, KCRS .npy (C/groups channels per filter)")
    p.add_argument("--bias", help="per-output-channel bias, (K,) .npy")
    p.add_argument("--random-bias", action="store_true", help="with --layer: add a random bias")
    p.add_argument("--stride", type=POSITIVE, help="convolution stride (overrides --layer's; "
                                                   "with --input: 1 when not given)")
    p.add_argument("--padding", type=NONNEG, help="zero padding on every side (with --input: "
                                                  "0 when not given)")
    p.add_argument("--dilation", type=POSITIVE, help="filter dilation (with --input: 1 when not "
                                                     "given)")
    p.add_argument("--groups", type=POSITIVE, help="convolution groups (with --input: 1 when "
                                                   "not given)")
    p.add_argument("--batch", type=POSITIVE, help="with --layer: batch size N")
    p.add_argument("--seed", type=NONNEG, default=0, help="seed of the random tensors and of "
                                                          "the backpressure pattern")
