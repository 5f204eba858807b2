"""A corpus bigger than memory: :class:`~awdlstm.tokenizers.corpus.TokenizedCorpus` built by streaming into a folder
of ``.npy`` files, then memory-mapped (the fast twin of ``tokenize_corpus``; chapter 10, "Tokenization").

nanoGPT prepares its data once into an id file (``prepare.py`` -> ``train.bin``) and training maps it. Here the
texts arrive in blocks (lists of a few thousand documents, from ``awdlstm.data.stream_sources``) and are never all held:

1. **tokenize** (:func:`tokenize_blocks`): the workers tokenize each block and write it, atomically, as
   ``blocks-<key>/000123.npz``: its token ids numbered in the block's own first-seen order, its types, the
   document lengths. A block file that exists is complete, so an interrupted build (Ctrl-C, SIGKILL, a full
   disk) starts again after its last block; ranks of ``torchrun`` take every n-th block (``part``);
2. **merge** (:func:`merge_blocks`): one pass over the blocks in order gives every type its id in the order
   the whole corpus first sees it (``tokenize_corpus``'s numbering, hence fastai's vocab tie order), writes
   ``ids.npy`` (int32, through a memory map), ``offsets.npy``, ``types.npz``, ``counts.npy`` (summed as the
   blocks arrive), and last ``manifest.json``: a folder without it is not a corpus;
3. **map** (:func:`load_corpus`): ``np.load(mmap_mode='r')``; a :class:`MappedCorpus` is a ``TokenizedCorpus``
   whose ``ids`` live on disk. :func:`numericalize_to` writes the vocab ids the same way, a chunk at a time.

The vocab, ids and offsets equal ``tokenize_corpus``'s on the same texts (tests/test_stream.py).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import corpus as C
from .atomic import atomic_write, read_json, write_json
from .fast import ChunkTokenizer
from .vocab import Vocab

STREAM_VERSION = "1"  # bump when the folder layout changes
MANIFEST = "manifest.json"
Block = tuple[list[str], list[bool] | None]  # the texts of a block, and their is_valid flags (or None)


class MappedCorpus(C.TokenizedCorpus):
    """A ``TokenizedCorpus`` read back from a corpus folder: ``ids`` is a read-only memory map; the token counts
    (``type_counts``, in type order) and the documents' ``is_valid`` flags (or None) were saved by the build."""

    def __init__(self, folder: Path, types: list[str], ids: np.ndarray, offsets: np.ndarray,
                 type_counts: np.ndarray, is_valid: np.ndarray | None, manifest: dict):
        super().__init__(types, ids, offsets)
        self.folder, self.type_counts, self.is_valid, self.manifest = folder, type_counts, is_valid, manifest
        self.origin = manifest.get("source")  # how errors name it
        self.built_s: float | None = None  # seconds its build took in this process (None: found whole, mapped)

    def counts(self) -> Counter[str]:
        """Token counts in first-seen order (saved by the build: no pass over the ids)."""
        return Counter(dict(zip(self.types, self.type_counts.tolist())))


# ---------------------------------------------------------------- 1. tokenize, a block at a time

def _encode_block(texts: list[str], memo: ChunkTokenizer) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A block of texts -> (its types in first-seen order, int32 ids in that numbering, int64 lengths)."""
    docs = [memo.encode(t) for t in texts]
    ids = np.frombuffer(b"".join(docs), dtype=np.int32)
    lengths = np.array([len(d) // 4 for d in docs], dtype=np.int64)
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")  # the memo's ids of the block's types, first-seen order
    local = np.empty(len(uniq), dtype=np.int32)
    local[by_first] = np.arange(len(uniq), dtype=np.int32)
    return [memo.types[j] for j in uniq[by_first].tolist()], local[inverse.reshape(-1)], lengths


def _pack_types(types: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings -> (utf-8 bytes as uint8, int64 offsets): no pickle."""
    blob = [t.encode("utf-8", "surrogatepass") for t in types]
    offsets = np.zeros(len(blob) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in blob], out=offsets[1:])
    return np.frombuffer(b"".join(blob), dtype=np.uint8), offsets


def _unpack_types(raw: np.ndarray, offsets: np.ndarray) -> list[str]:
    raw = raw.tobytes()
    return [raw[a:b].decode("utf-8", "surrogatepass") for a, b in pairwise(offsets.tolist())]


def _write_block(args: tuple[Path, list[str], list[bool] | None]) -> tuple[int, int]:
    """Worker: tokenize one block and write its file atomically. Returns (documents, tokens)."""
    path, texts, flags = args
    types, ids, lengths = _encode_block(texts, C._worker or _local_memo())
    type_bytes, type_offsets = _pack_types(types)
    valid = np.zeros(0, dtype=np.uint8) if flags is None else np.asarray(flags, dtype=np.uint8)
    with atomic_write(path, "wb") as f:
        np.savez(f, ids=ids, lengths=lengths, type_bytes=type_bytes, type_offsets=type_offsets, valid=valid)
    return len(texts), len(ids)


_memo: ChunkTokenizer | None = None


def _local_memo() -> ChunkTokenizer:
    global _memo
    if _memo is None:
        _memo = ChunkTokenizer()
    return _memo


def block_path(folder: Path, key: str, i: int) -> Path:
    return Path(folder) / f"blocks-{key[:16]}" / f"{i:06d}.npz"


def tokenize_blocks(blocks: Iterable[Block], folder: str | os.PathLike, key: str, n_workers: int | None = None,
                    part: int = 0, n_parts: int = 1, total_docs: int | None = None,
                    progress: bool = True) -> int:
    """Tokenize blocks ``part::n_parts`` of ``blocks`` into ``folder/blocks-<key>/`` (blocks already there are
    kept: a resumed build starts after them). Every block is read, so every part counts the same blocks.
    Returns the number of blocks. Needs the default pipeline (fastai's rules and word tokenizer)."""
    folder = Path(folder)
    (folder / f"blocks-{key[:16]}").mkdir(parents=True, exist_ok=True)
    for old in folder.glob("blocks-*"):  # another input's blocks: never merged with these
        if old.name != f"blocks-{key[:16]}":
            shutil.rmtree(old, ignore_errors=True)
    n_workers = n_workers or C.available_cores()
    bar = tqdm(total=total_docs, desc="tokenizing", unit="doc", disable=not progress, smoothing=0.05)
    n_blocks, tokens, t0 = 0, 0, time.time()

    def done(n_docs: int, n_tokens: int) -> None:
        nonlocal tokens
        tokens += n_tokens
        bar.update(n_docs)
        bar.set_postfix_str(f"{tokens / max(time.time() - t0, 1e-9) / 1e6:.2f}M tok/s", refresh=False)

    def todo() -> Iterator[tuple[Path, list[str], list[bool] | None] | int]:
        nonlocal n_blocks
        for i, (texts, flags) in enumerate(blocks):
            n_blocks = i + 1
            path = block_path(folder, key, i)
            if i % n_parts != part:
                continue
            yield len(texts) if path.exists() else (path, texts, flags)  # an int: a block done earlier
    try:
        if n_workers <= 1:
            for job in todo():
                if isinstance(job, int):
                    done(job, 0)
                else:
                    done(*_write_block(job))
        else:
            ctx = C.worker_context()  # from a fork server, never forked from the caller (see tokenize_corpus)
            with (ctx.Pool(n_workers, initializer=C._start_worker, initargs=(True, os.getpid())) as pool,
                  C.sigterm_interrupts("tokenizing the corpus; finished blocks are kept")):
                window: deque = deque()  # at most 2 blocks per worker in flight: the texts are never all held
                for job in todo():
                    if isinstance(job, int):
                        done(job, 0)
                        continue
                    window.append(pool.apply_async(_write_block, (job,)))
                    while len(window) >= 2 * n_workers or (window and window[0].ready()):
                        done(*window.popleft().get())
                while window:
                    done(*window.popleft().get())
    finally:
        bar.close()
    return n_blocks


# ---------------------------------------------------------------- 2. merge into one numbering

def merge_blocks(folder: str | os.PathLike, key: str, n_blocks: int, info: dict | None = None,
                 progress: bool = True) -> None:
    """Join the ``n_blocks`` block files into ``ids.npy`` (global first-seen type ids), ``offsets.npy``,
    ``types.npz``, ``counts.npy`` and ``is_valid.npy``, then write ``manifest.json`` (``info`` added to it)
    and remove the blocks. Memory: one block, the offsets and the table of distinct tokens."""
    folder = Path(folder)
    paths = [block_path(folder, key, i) for i in range(n_blocks)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: a block of the corpus is missing ({len(missing)} in all); "
                                "run the build again to make it")
    (folder / MANIFEST).unlink(missing_ok=True)  # from here on the folder is not a corpus until the end
    lengths, flags = [], []
    for p in paths:
        with np.load(p, allow_pickle=False) as z:
            lengths.append(z["lengths"])
            flags.append(z["valid"])
    offsets = np.zeros(sum(len(x) for x in lengths) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(lengths) if lengths else [], out=offsets[1:])
    del lengths
    n_tokens = int(offsets[-1])
    index: dict[str, int] = {}
    counts = np.zeros(1024, dtype=np.int64)
    with _npy_writer(folder / "ids.npy", n_tokens) as ids:
        for p in tqdm(paths, desc="merging blocks", unit="block", disable=not progress):
            with np.load(p, allow_pickle=False) as z:
                types, local = _unpack_types(z["type_bytes"], z["type_offsets"]), z["ids"]
            remap = np.array([index.setdefault(t, len(index)) for t in types], dtype=np.int32)
            if len(index) > len(counts):
                counts = np.concatenate([counts, np.zeros(max(len(index), 2 * len(counts)) - len(counts), np.int64)])
            counts[remap] += np.bincount(local, minlength=len(types))  # remap holds each id once
            remap[local].tofile(ids)
    type_bytes, type_offsets = _pack_types(list(index))
    with atomic_write(folder / "types.npz") as f:
        np.savez(f, type_bytes=type_bytes, type_offsets=type_offsets)
    for name, arr in (("offsets.npy", offsets), ("counts.npy", counts[:len(index)])):
        with atomic_write(folder / name) as f:
            np.save(f, arr)
    has_flags = all(len(f) for f in flags) and len(flags) > 0
    if has_flags:
        with atomic_write(folder / "is_valid.npy") as f:
            np.save(f, np.concatenate(flags).astype(bool))
    manifest = {"version": STREAM_VERSION, "key": key, "n_docs": len(offsets) - 1, "n_tokens": n_tokens,
                "n_types": len(index), "is_valid": has_flags, **(info or {}),
                "files": {p.name: p.stat().st_size for p in sorted(folder.glob("*.np[yz]"))}}
    write_json(folder / MANIFEST, manifest, checksum=True)  # last: the corpus is whole
    shutil.rmtree(folder / f"blocks-{key[:16]}", ignore_errors=True)


def build_corpus(blocks: Iterable[Block], folder: str | os.PathLike, key: str, n_workers: int | None = None,
                 total_docs: int | None = None, info: dict | None = None, progress: bool = True) -> MappedCorpus:
    """One process: the corpus ``key`` in ``folder`` (reused if whole, else tokenized, resuming, and merged)."""
    found = read_manifest(folder, key)
    if found is None:
        n = tokenize_blocks(blocks, folder, key, n_workers, total_docs=total_docs, progress=progress)
        merge_blocks(folder, key, n, info, progress)
    return load_corpus(folder, key)


# ---------------------------------------------------------------- 3. map it back

def read_manifest(folder: str | os.PathLike, key: str | None = None) -> dict | None:
    """The manifest of a whole corpus in ``folder`` (of ``key``, if given), or None: not built, not finished,
    another input's, or damaged (its checksum, or a file of another size than it says)."""
    path = Path(folder) / MANIFEST
    try:
        m = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("version") != STREAM_VERSION or (key is not None and m.get("key") != key):
        return None
    for name, size in m.get("files", {}).items():
        f = Path(folder) / name
        if not f.is_file() or f.stat().st_size != size:
            return None
    return m


def load_corpus(folder: str | os.PathLike, key: str | None = None) -> MappedCorpus:
    """Map the corpus in ``folder``: ids and offsets as read-only memory maps, types and counts read."""
    folder = Path(folder)
    m = read_manifest(folder, key)
    if m is None:
        raise ValueError(f"{folder}: not a whole corpus (no valid {MANIFEST}: the build did not finish, or it "
                         "holds another input's corpus)")
    with np.load(folder / "types.npz", allow_pickle=False) as z:
        types = _unpack_types(z["type_bytes"], z["type_offsets"])
    ids = np.load(folder / "ids.npy", mmap_mode="r")
    offsets = np.load(folder / "offsets.npy", mmap_mode="r")
    counts = np.load(folder / "counts.npy")
    is_valid = np.load(folder / "is_valid.npy", mmap_mode="r") if m["is_valid"] else None
    C._check_layout(ids, offsets, np.zeros(1, np.int64), 0, m["n_docs"])
    if len(types) != m["n_types"] or len(counts) != len(types):
        raise ValueError(f"{folder}: the type table does not fit the manifest")
    return MappedCorpus(folder, types, ids, offsets, counts, is_valid, m)


def doc_counts(corpus: C.TokenizedCorpus, idxs: np.ndarray, chunk_tokens: int = 1 << 24) -> Counter[str]:
    """``corpus.subset(idxs).counts()`` a chunk of documents at a time: counts in the order the documents
    ``idxs`` first meet each token (fastai's vocab tie order), without copying their ids."""
    idxs = np.asarray(idxs, dtype=np.int64)
    offsets, n = corpus.offsets, len(corpus.types)
    counts = np.zeros(n, dtype=np.int64)
    first = np.full(n, -1, dtype=np.int64)
    starts, ends = np.asarray(offsets[idxs]), np.asarray(offsets[idxs + 1])
    cum = np.cumsum(ends - starts)
    pos, lo = 0, 0
    while lo < len(idxs):
        hi = max(lo + 1, int(np.searchsorted(cum, (cum[lo - 1] if lo else 0) + chunk_tokens, side="right")))
        part = np.concatenate([corpus.ids[a:b] for a, b in zip(starts[lo:hi].tolist(), ends[lo:hi].tolist())])
        counts += np.bincount(part, minlength=n)
        uniq, at = np.unique(part, return_index=True)
        new = first[uniq] < 0
        first[uniq[new]] = pos + at[new]
        pos, lo = pos + len(part), hi
    seen = np.flatnonzero(first >= 0)
    order = seen[np.argsort(first[seen], kind="stable")].tolist()
    return Counter({corpus.types[i]: int(counts[i]) for i in order})


def numericalize_to(corpus: C.TokenizedCorpus, vocab: Vocab, path: str | os.PathLike,
                    chunk_tokens: int = 1 << 24) -> np.ndarray:
    """``corpus.numericalize(vocab)[0]`` written to ``path`` (.npy, int32) a chunk at a time and mapped
    back read-only; an existing ``path`` of the right size is reused (its name should say which vocab)."""
    path = Path(path)
    n = len(corpus.ids)
    if path.exists():
        try:
            ids = np.load(path, mmap_mode="r")
            if ids.shape == (n,) and ids.dtype == np.int32:
                return ids
        except (OSError, ValueError):
            pass
    lookup = np.array([vocab.stoi.get(t, 0) for t in corpus.types], dtype=np.int32)
    with _npy_writer(path, n) as out:
        for chunk in _chunks(corpus.ids, chunk_tokens):
            lookup[chunk].tofile(out)
    return np.load(path, mmap_mode="r")


def _chunks(ids: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """``ids`` a chunk at a time; a memory map is read with plain reads, so its pages do not stay mapped
    into this process (its RSS) after the pass."""
    if not isinstance(ids, np.memmap) or ids.filename is None:
        yield from (ids[a:a + size] for a in range(0, len(ids), size))
        return
    with open(ids.filename, "rb") as f:
        f.seek(ids.offset)
        for a in range(0, len(ids), size):
            yield np.fromfile(f, dtype=ids.dtype, count=min(size, len(ids) - a))


@contextlib.contextmanager
def _npy_writer(path: Path, n: int) -> Iterator:
    """A file to write an int32 ``.npy`` of ``n`` values into, in order (plain writes: no mapped dirty pages);
    it appears at ``path`` only when complete and of the right size."""
    with atomic_write(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<i4", "fortran_order": False, "shape": (n,)})
        start = f.tell()
        yield f
        if f.tell() - start != 4 * n:
            raise ValueError(f"{path}: wrote {(f.tell() - start) // 4} ids, expected {n}")


def vocab_key(vocab: Vocab | Sequence[str]) -> str:
    """A short digest of a vocab's tokens: the name of its numericalized ids file."""
    import hashlib
    return hashlib.sha256("\n".join(getattr(vocab, "itos", vocab)).encode("utf-8", "surrogatepass")).hexdigest()[:16]
