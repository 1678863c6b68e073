"""The small files that say what made a results folder, written so that an interruption never corrupts them.

A folder of results (a benchmark run, a generated dataset) keeps ``run.json``: what made it (weights digest,
settings). A later run reads it back, compares it with its own identity and refuses to mix two runs. Line files
(one JSON record per line) grow by appends; other files are replaced whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def read_record(path: Path, advice: str) -> dict | None:
    """The JSON object in ``path``, None if there is no such file; a damaged one is a ValueError that names the
    file and ends with ``advice`` (what to do)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text())
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        raise ValueError(f"{path} is damaged ({e}); {advice}") from None
    return value


def differences(made_by: dict, identity: dict, not_compared: Iterable[str] = ()) -> str:
    """``"steps: 10 there, 12 now, ..."`` for every entry of ``identity`` that the record ``made_by`` holds
    otherwise (entries in ``not_compared`` are kept for the reader only); "" when they agree."""
    skip = set(not_compared)
    return ", ".join(f"{k}: {made_by.get(k)!r} there, {v!r} now" for k, v in identity.items()
                     if k not in skip and made_by.get(k) != v)


def write_atomically(path: Path, text: str) -> None:
    """``text`` written beside ``path`` and then moved over it: an interrupted write leaves the old file whole."""
    tmp = Path(path).with_name(f".{Path(path).name}")
    tmp.write_text(text)
    tmp.replace(path)


def append_line(path: Path, line: str) -> None:
    """Append ``line`` to a line-per-record file; a last line cut short (an interrupted write) is ended first,
    so the new record never joins onto it."""
    with Path(path).open("a+b") as f:
        if f.tell() > 0:
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(line.encode() + b"\n")
