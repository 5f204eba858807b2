"""Atomic file writes: nothing the user made is ever left half-written; and the matching JSON reader, which
checks the checksum a JSON file carries (``write_json(..., checksum=True)``).

Every file the project writes (vocab, tokenized-corpus cache, checkpoints, run history) goes through
:func:`atomic_write`: the data goes to a temporary file in the same folder, is flushed to disk, and only then
renamed over the destination (``os.replace`` is atomic on POSIX and Windows). A crash at any moment leaves
either the old file or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None,
                 newline: str | None = None) -> Iterator[IO]:
    """``with atomic_write("out.json", "w") as f: f.write(...)``: ``path`` appears only when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write supports modes 'w' and 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        text = mode == "w"
        with os.fdopen(fd, mode, encoding=encoding or ("utf-8" if text else None), newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_write(path, "w", newline="") as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: object, checksum: bool = False) -> None:
    """Write ``obj`` as UTF-8 JSON, atomically; ``checksum=True`` (``obj`` a dict) adds its :func:`json_checksum`,
    so that :func:`read_json` refuses the file once its contents are edited or corrupted."""
    if checksum:
        obj = with_checksum(obj)
    with atomic_write(path, "w") as f:
        json.dump(obj, f, ensure_ascii=False, indent=None)


def read_json(path: str | os.PathLike) -> object:
    """Read a JSON file (UTF-8); a truncated or corrupted one, or one whose contents do not match the checksum
    saved in it (see :func:`write_json`), is a ``ValueError`` naming it."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: truncated or corrupted JSON ({e})") from None
    if isinstance(obj, dict) and CHECKSUM_KEY in obj and obj[CHECKSUM_KEY] != json_checksum(obj):
        raise ValueError(f"{path}: edited or corrupted, its contents do not match the checksum saved in it")
    return obj


CHECKSUM_KEY = "content_sha256"


def json_checksum(obj: dict) -> str:
    """sha256 of a JSON object's contents (keys sorted, whitespace and the checksum itself left out)."""
    body = {k: v for k, v in obj.items() if k != CHECKSUM_KEY}
    text = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def with_checksum(obj: dict) -> dict:
    """``obj`` with its :func:`json_checksum` added (under ``CHECKSUM_KEY``)."""
    if not isinstance(obj, dict):
        raise TypeError(f"only a JSON object (dict) can carry a checksum, got {type(obj).__name__}")
    return {**obj, CHECKSUM_KEY: json_checksum(obj)}
