"""Texts read a block at a time (chapter 10, "Text Preprocessing", for a corpus bigger than memory): the same
documents as `awdlstm.data.sources` reads into lists, as iterators, for `awdlstm.tokenizers.stream`.

    for texts, flags in blocks(iter_source(TextSource("csv", "big.csv")), 4096): ...

`corpus_plan` names the corpus folder of a source and its key: a digest of the files' contents and the
settings. A second run finds the folder by the source's paths and reuses it when the files' sizes and
modification times are those the manifest recorded (no re-reading); otherwise it hashes the files again and
reuses the corpus only if the contents are the same.
"""
from __future__ import annotations

import csv
import hashlib
import os
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from ..tokenizers.corpus import CACHE_VERSION
from ..tokenizers.stream import STREAM_VERSION, read_manifest
from .sources import (
    _TRUE,
    _csv_errors,
    _open_text,
    _require_columns,
    csv_rows,
    get_text_files,
    iter_lines,
    read_text,
)
from .text_source import TextSource

BLOCK_DOCS = int(os.environ.get("AWDLSTM_BLOCK_DOCS", "4096"))  # documents per block: its texts, ids and file stay a few MiB
Doc = tuple[str, bool | None]  # a text and its is_valid flag (None: the source has no split)


def iter_csv(path: str | os.PathLike, text_col: str = "text", valid_col: str | None = None) -> Iterator[Doc]:
    """The rows of a CSV file with a header, one at a time (as `read_csv(path, text_col, None, valid_col)`)."""
    path = Path(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with _csv_errors(path), _open_text(path) as f:
        reader = csv_rows(f, header=True)
        _require_columns(path, reader.fieldnames, [c for c in (text_col, valid_col) if c])
        for i, row in enumerate(reader):
            if None in row:
                raise ValueError(f"{path}: row {i + 2} has more fields than the header "
                                 f"{len(reader.fieldnames)} (a comma in an unquoted text?)")
            if row[text_col] is None:
                raise ValueError(f"{path}: row {i + 2} has no {text_col!r} field")
            yield row[text_col], ((row[valid_col] or "").strip().lower() in _TRUE) if valid_col else None


def iter_wikitext(path: str | os.PathLike) -> Iterator[Doc]:
    """fastai's WikiText-103 folder: the articles of train.csv (training), then test.csv (validation)."""
    path = Path(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    for name, valid in (("train.csv", False), ("test.csv", True)):
        with _csv_errors(path / name), _open_text(path / name) as f:
            yield from ((row[0], valid) for row in csv_rows(f) if row)


def source_files(source: TextSource) -> list[Path]:
    """The files a source reads, in reading order."""
    if source.kind == "csv" or source.kind == "text":
        return [Path(source.path)]
    if source.kind == "wikitext":
        return [Path(source.path) / "train.csv", Path(source.path) / "test.csv"]
    if source.kind == "folder":
        root = Path(source.path)
        folders = [d for d in ("train", "test", "unsup") if (root / d).is_dir()]
        return get_text_files(root, folders if {"train", "test"} <= set(folders) else None)
    raise ValueError(f"{source.describe()} cannot be streamed (a CSV, a folder, WikiText-103 or a text file can)")


def iter_source(source: TextSource) -> Iterator[Doc]:
    """The documents of `source` (for a language model: no labels), one at a time."""
    if source.kind == "csv":
        return iter_csv(source.path, source.text_col, source.valid_col)
    if source.kind == "wikitext":
        return iter_wikitext(source.path)
    if source.kind == "text":
        return ((text, None) for text, _ in iter_lines(source.path))
    return ((read_text(f), None) for f in source_files(source))


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """`items` in lists of `size` (the last one shorter), taken from the iterable only as they are needed."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def blocks(docs: Iterable[Doc], size: int = BLOCK_DOCS) -> Iterator[tuple[list[str], list[bool] | None]]:
    """Group documents into blocks of `size`: (texts, is_valid flags or None)."""
    for chunk in chunks(docs, size):
        flags = [v for _, v in chunk]
        yield [t for t, _ in chunk], (None if flags[0] is None else flags)


def fingerprint(files: list[Path]) -> list[list]:
    """What a quick check compares: each file's path, size and modification time (ns)."""
    out = []
    for f in files:
        st = f.stat()
        out.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    return out


def content_digest(files: list[Path]) -> str:
    """sha256 over every file's bytes (and its size, so that files cannot shift into each other)."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.stat().st_size.to_bytes(8, "little"))
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def estimate_docs(source: TextSource, files: list[Path], sample_bytes: int = 8 << 20) -> int | None:
    """Documents in `source`, for the progress bar: exact for a folder, else counted in the first
    `sample_bytes` of each file and scaled by its size."""
    if source.kind == "folder":
        return len(files)
    total = 0
    for f in files:
        size = f.stat().st_size
        with open(f, "rb") as fh:
            head = fh.read(sample_bytes)
        text = head.decode("utf-8", "ignore")
        if source.kind == "text":
            n = sum(1 for line in text.splitlines() if line.strip())
        else:
            n = sum(1 for _ in csv_rows(text.splitlines(keepends=True))) - (source.kind == "csv")
        total += n if size <= len(head) else int(n * size / max(len(head), 1))
    return max(total, 1)


def corpus_plan(source: TextSource, cache_dir: str | os.PathLike, block_docs: int = BLOCK_DOCS
                ) -> tuple[Path, str, dict]:
    """(folder, key, info) of the streamed corpus of `source`: the folder is named by the files' paths and
    the settings, the key digests their contents; `info` goes into the manifest."""
    files = source_files(source)
    if not files:
        raise ValueError(f"{source.describe()}: no texts (no files)")
    settings = [STREAM_VERSION, CACHE_VERSION, source.kind, source.text_col if source.kind == "csv" else None,
                source.valid_col if source.kind == "csv" else None, block_docs]
    name = hashlib.sha256(repr((settings, [str(f.resolve()) for f in files])).encode()).hexdigest()[:16]
    folder = Path(cache_dir) / f"corpus-{name}"
    prints = fingerprint(files)
    m = read_manifest(folder)
    if m is not None and m.get("fingerprint") == prints:
        return folder, m["key"], m  # the same files, untouched since the build: no need to read them
    key = hashlib.sha256(repr((settings, content_digest(files))).encode()).hexdigest()[:32]
    return folder, key, {"source": source.describe(), "fingerprint": prints}
