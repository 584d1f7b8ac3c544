"""The job directory shared by the simulation flow (writer) and the cocotb test modules (readers).

``job.json`` + ``frames.bin`` in; ``out.bin`` + ``result.json`` out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gen.errors import AccelgenError

__all__ = ["write_job", "load_job", "save_result", "load_result"]


def write_job(job_dir: Path, frames: list[bytes], meta: dict) -> None:
    """Write a job: the frames and ``meta`` (plus their sizes) for a cocotb test module."""
    job_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("out.bin", "result.json"):
        (job_dir / stale).unlink(missing_ok=True)
    (job_dir / "frames.bin").write_bytes(b"".join(frames))
    (job_dir / "job.json").write_text(json.dumps({"frame_bytes": [len(f) for f in frames]}
                                                 | meta))


def load_job(job_dir: str | Path | None = None) -> tuple[Path, dict, list[bytes]]:
    """(job directory, job.json, input frames); the directory defaults to $ACCELGEN_JOB."""
    job_dir = Path(job_dir or os.environ["ACCELGEN_JOB"])
    job = json.loads((job_dir / "job.json").read_text())
    return job_dir, job, _split((job_dir / "frames.bin").read_bytes(), job["frame_bytes"])


def save_result(job_dir: Path, outs: list[bytes], counters: dict) -> None:
    (job_dir / "out.bin").write_bytes(b"".join(outs))
    (job_dir / "result.json").write_text(json.dumps({
        "out_frame_bytes": [len(o) for o in outs], "counters": counters}))


def load_result(job_dir: Path) -> tuple[list[bytes], dict]:
    """(output frames, counters) written by :func:`save_result`; a run the test module ended
    at its bound (``fault``, sim/driver.py ``hang``) raises its one line."""
    result = json.loads((job_dir / "result.json").read_text())
    if "fault" in result["counters"]:
        raise AccelgenError(f"{result['counters']['fault']}; see {Path(job_dir) / 'sim.log'}")
    return _split((job_dir / "out.bin").read_bytes(), result["out_frame_bytes"]), \
        result["counters"]


def _split(blob: bytes, sizes: list[int]) -> list[bytes]:
    """Cut a concatenation of frames back into frames of the given sizes."""
    out, pos = [], 0
    for n in sizes:
        out.append(blob[pos:pos + n])
        pos += n
    return out
