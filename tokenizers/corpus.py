"""Tokenizing many documents: fastai's ``tokenize_texts`` / ``parallel_tokenize``, plus a compact on-disk cache.

One text goes through three steps (chapter 10, "Word Tokenization with fastai")::

    >>> tokenize("The U.S. dollar $1 is $1.00.")
    ['xxbos', 'xxmaj', 'the', 'xxup', 'u.s', '.', 'dollar', '$', '1', 'is', '$', '1.00', '.']

1. the pre-rules of :mod:`awdlstm.tokenizers.rules` rewrite the whole string (``xxbos``, ``xxmaj``, ``xxrep`` ...);
2. the word tokenizer of :mod:`awdlstm.tokenizers.word` splits it as spaCy's English tokenizer does;
3. the post-rule ``replace_space`` turns a space inside a token into ``▁``.

A corpus is stored the way nanoGPT stores its data: every distinct token once (``types``), then the whole
corpus as one int32 array of type ids (``ids``) with document boundaries (``offsets``): document ``i`` is
``ids[offsets[i]:offsets[i + 1]]``. That takes 4 bytes a token instead of a Python string each, turns vocab
building into a ``bincount``, and numericalizing into one array lookup. Types are numbered in the order they
are first seen, so the counts keep fastai's tie order (first-seen) and the vocab equals fastai's.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing as mp
import os
import select
import signal
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .atomic import atomic_write
from .fast import ChunkTokenizer
from .rules import DEFAULT_RULES, Rule, apply_rules, replace_space
from .vocab import Vocab
from .word import word_tokenize
from .word_fast import apply_default_rules, cached_word_tokenizer

Tokenizer = Callable[[str], list[str]]
CACHE_VERSION = "2"  # bump when the tokenizer's output changes, so old caches are not reused
# n_workers=None: below this many characters (~6,000 IMDb reviews, ~5 s on one core), one process
POOL_MIN_CHARS = int(os.environ.get("AWDLSTM_POOL_MIN_CHARS", "8000000"))


def tokenize(text: str, rules: Sequence[Rule] | None = None, tok: Tokenizer = word_tokenize) -> list[str]:
    """One text -> its tokens: the pre-rules, the word tokenizer, then ``replace_space`` (fastai's tokenize1)."""
    return [t if " " not in t else replace_space(t) for t in tok(apply_rules(text, rules))]


@dataclass
class TokenizedCorpus:
    """Many tokenized documents, compactly: ``types`` (distinct tokens), ``ids`` (int32), ``offsets`` (int64)."""

    types: list[str]
    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> list[str]:
        types = self.types
        return [types[j] for j in self.ids[self.offsets[i]:self.offsets[i + 1]].tolist()]

    def to_lists(self) -> list[list[str]]:
        """All documents as lists of token strings."""
        types, ids = self.types, self.ids.tolist()
        bounds = self.offsets.tolist()
        return [[types[j] for j in ids[a:b]] for a, b in pairwise(bounds)]

    def counts(self) -> Counter[str]:
        """Token counts in first-seen order, as fastai's ``Counter`` over the documents."""
        freq = np.bincount(self.ids, minlength=len(self.types)).tolist()
        return Counter(dict(zip(self.types, freq)))

    def numericalize(self, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
        """Token ids under ``vocab`` (unknown -> 0) as ``(ids int32, offsets int64)``."""
        lookup = np.array([vocab.stoi.get(t, 0) for t in self.types], dtype=np.int32)
        return lookup[self.ids], self.offsets

    def subset(self, idxs: Sequence[int] | np.ndarray, max_tokens: int = 0) -> TokenizedCorpus:
        """Documents ``idxs`` (each cut to its first ``max_tokens`` if > 0, its last ``-max_tokens`` if < 0),
        types renumbered in first-seen order,
        so a vocab built from the subset equals fastai's on those documents."""
        ids, offsets = select_docs(self.ids, self.offsets, idxs, max_tokens)
        uniq, first = np.unique(ids, return_index=True)
        order = uniq[np.argsort(first, kind="stable")]  # old type ids in first-seen order
        remap = np.zeros(len(self.types), dtype=np.int32)
        remap[order] = np.arange(len(order), dtype=np.int32)
        return TokenizedCorpus([self.types[i] for i in order], remap[ids], offsets)

    def save(self, path: str | os.PathLike, key: str = "") -> None:
        """Write the corpus as one ``.npz`` file (no pickle), atomically; ``key`` (the cache key) is stored in it."""
        blob = [t.encode("utf-8", "surrogatepass") for t in self.types]
        type_offsets = np.zeros(len(blob) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in blob], out=type_offsets[1:])
        with atomic_write(path, "wb") as f:
            np.savez(f, ids=self.ids, offsets=self.offsets, type_offsets=type_offsets,
                     type_bytes=np.frombuffer(b"".join(blob), dtype=np.uint8),
                     key=np.frombuffer(key.encode("ascii"), dtype=np.uint8))

    @classmethod
    def load(cls, path: str | os.PathLike, key: str | None = None, n_docs: int | None = None) -> TokenizedCorpus:
        """Read a corpus written by :meth:`save`. A damaged file (truncated, a byte changed: every member of the
        ``.npz`` carries a CRC-32 that is checked as it is read, and the arrays must fit together), or one that is
        not the corpus ``key`` of ``n_docs`` documents, is a ``ValueError`` naming the file."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if key is not None and z["key"].tobytes() != key.encode("ascii"):
                    raise _Damaged("it holds another corpus: the key inside is not the one in its name")
                raw, bounds = z["type_bytes"].tobytes(), z["type_offsets"]
                ids, offsets = z["ids"], z["offsets"]
            _check_layout(ids, offsets, bounds, len(raw), n_docs)
            bounds = bounds.tolist()
            types = [raw[a:b].decode("utf-8", "surrogatepass") for a, b in pairwise(bounds)]
        except OSError:
            raise  # not readable (missing, a folder, no permission): the error names the file
        except Exception as e:  # a damaged file fails in many ways: BadZipFile (a CRC-32), EOFError, ValueError,
            # KeyError, a SyntaxError from a changed .npy header, a MemoryError from a changed shape ...
            why = str(e).splitlines()[0][:200] if str(e) else "no details"
            why = why if isinstance(e, _Damaged) else f"{type(e).__name__}: {why}"
            raise ValueError(f"{path}: truncated or corrupted tokenized-corpus file ({why})") from None
        return cls(types, ids, offsets)


class _Damaged(ValueError):
    """A cache file that reads without error but does not hold what it should."""


def _check_layout(ids: np.ndarray, offsets: np.ndarray, type_offsets: np.ndarray, n_type_bytes: int,
                  n_docs: int | None) -> None:
    """The arrays fit together: int32 ids, int64 offsets from 0 to len(ids), ``n_docs`` documents."""
    if ids.dtype != np.int32 or offsets.dtype != np.int64 or type_offsets.dtype != np.int64:
        raise _Damaged(f"wrong dtypes {ids.dtype}, {offsets.dtype}, {type_offsets.dtype}")
    if ids.ndim != 1 or offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(ids):
        raise _Damaged("document offsets do not fit the ids")
    if n_docs is not None and len(offsets) != n_docs + 1:
        raise _Damaged(f"{len(offsets) - 1} documents, expected {n_docs}")
    if type_offsets.ndim != 1 or len(type_offsets) == 0 or type_offsets[-1] != n_type_bytes:
        raise _Damaged("type offsets do not fit the type bytes")


def select_docs(ids: np.ndarray, offsets: np.ndarray, idxs: Sequence[int] | np.ndarray,
                max_tokens: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Documents ``idxs`` of ``(ids, offsets)`` as a new ``(ids, offsets)``, each cut to its first ``max_tokens``
    tokens if > 0, or to its last ``-max_tokens`` if < 0 (where a review's verdict usually is)."""
    idxs = np.asarray(idxs, dtype=np.int64)
    starts, ends = offsets[idxs], offsets[idxs + 1]
    if max_tokens > 0:
        ends = np.minimum(ends, starts + max_tokens)
    elif max_tokens < 0:
        starts = np.maximum(starts, ends + max_tokens)
    new_offsets = np.zeros(len(idxs) + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=new_offsets[1:])
    parts = [ids[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
    return (np.concatenate(parts) if parts else ids[:0]), new_offsets


def available_cores() -> int:
    """The number of cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_worker: ChunkTokenizer | None = None  # the memo of this worker process (see _start_worker)


def _start_worker(fast: bool, parent: int) -> None:
    """A tokenizing worker leaves signals to its parent, which stops the pool and reports once: Ctrl-C (sent to
    the whole process group) is ignored, SIGTERM (the parent's ``Pool.terminate``) ends it without a traceback,
    and on Linux it gets SIGTERM when its parent, the fork server, ends, which it does as soon as the caller dies,
    even by SIGKILL; a result written to a caller already gone ends it by SIGPIPE (no broken-pipe tracebacks)."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):  # not Linux
        pass
    try:  # the caller (not this process's parent: the fork server) died before prctl
        os.kill(parent, 0)
    except ProcessLookupError:
        os._exit(0)
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    if fast:
        _worker = ChunkTokenizer()


def _end_with(parent: int) -> None:
    """A worker's watch: it ends, quietly, once the caller is gone (the fork server outlives the caller while any
    worker holds its pipe, so its end alone would not end them)."""
    try:
        fd = os.pidfd_open(parent)  # Linux: readable once the caller has exited
    except (AttributeError, OSError):
        fd = None
    while True:
        if fd is not None:
            select.select([fd], [], [])
        else:
            time.sleep(0.5)
            try:
                os.kill(parent, 0)
                continue
            except ProcessLookupError:
                pass
        os._exit(0)


@contextlib.contextmanager
def sigterm_interrupts(what: str) -> Iterator[None]:
    """In the main thread, SIGTERM raises KeyboardInterrupt("terminated (SIGTERM) while <what>") inside the
    block (as Ctrl-C does), so that the pool is stopped on the way out and the caller reports it once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt(f"terminated (SIGTERM) while {what}")
    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if old is None else old)


def _tokenize_fast(texts: list[str], memo: ChunkTokenizer | None = None) -> tuple[int, list[str], np.ndarray, list[int]]:
    """Worker, default pipeline: a batch of texts through this process's :class:`ChunkTokenizer`. Returns
    (process id, the types it met first in this batch, int32 ids in its numbering, lengths)."""
    memo = memo or _worker
    docs = [memo.encode(text) for text in texts]
    ids = np.frombuffer(b"".join(docs), dtype=np.int32)
    return os.getpid(), memo.new_types(), ids, [len(d) // 4 for d in docs]


def _tokenize_chunk(args: tuple[list[str], Sequence[Rule] | None, Tokenizer]) -> tuple[None, list[str], np.ndarray, list[int]]:
    """Worker, any rules and tokenizer: a batch of texts -> (None, its types in first-seen order, int32 ids, lengths)."""
    texts, rules, tok = args
    tok = cached_word_tokenizer() if tok is word_tokenize else tok  # fast.py's run cache: the same tokens
    index: dict[str, int] = {}
    ids = array("i")
    lengths = []
    for text in texts:
        tokens = tok(apply_default_rules(text) if rules is None else apply_rules(text, rules))  # fast.py's rules cache
        for t in dict.fromkeys(tokens):  # number new types in the order they first appear (linear in tokens)
            if t not in index:
                index[t] = len(index)
        ids.extend(map(index.__getitem__, tokens))  # C speed: no Python code per token
        lengths.append(len(tokens))
    ids = np.frombuffer(ids, dtype=np.int32) if len(ids) else np.zeros(0, dtype=np.int32)
    # replace_space per type, not per token; should a '▁' typed in a text make two types equal, merge them.
    types = [replace_space(t) for t in index]
    if len(set(types)) < len(types):
        merged = {t: None for t in types}
        to_merged = {t: i for i, t in enumerate(merged)}
        ids = np.array([to_merged[t] for t in types], dtype=np.int32)[ids]
        types = list(merged)
    return None, types, ids, lengths


def _corpus_key(texts: Sequence[str], rules: Sequence[Rule] | None, tok: Tokenizer) -> str:
    """A content hash of the texts and the tokenizer settings: the cache key."""
    h = hashlib.sha256()
    names = [f"{r.__module__}.{r.__qualname__}" for r in (DEFAULT_RULES if rules is None else rules)]
    h.update(repr((CACHE_VERSION, names, getattr(tok, "__qualname__", repr(tok)))).encode())
    for text in texts:
        b = text.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:32]


def tokenize_corpus(texts: Sequence[str], n_workers: int | None = None, rules: Sequence[Rule] | None = None,
                    tok: Tokenizer = word_tokenize, cache_dir: str | os.PathLike | None = None,
                    chunk_size: int = 256, progress: bool | None = None) -> TokenizedCorpus:
    """Tokenize every text (in order) on all cores; with ``cache_dir``, reuse the result of an earlier run.

    ``n_workers=None``: all cores when the texts hold at least ``POOL_MIN_CHARS`` characters, else this process
    alone (starting the workers, once per program, costs about as much as tokenizing that much text: see
    :func:`worker_context`). ``rules`` and ``tok`` must be importable module-level functions or objects of
    importable classes when ``n_workers > 1`` (the workers are not forked from the caller). A cache entry that
    is damaged (see :meth:`TokenizedCorpus.load`) is named in one line on stderr and rebuilt. SIGTERM while the
    workers run is a ``KeyboardInterrupt`` (the workers are stopped, nothing is cached).
    """
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, not a str")
    cache_file = None
    if cache_dir is not None:
        key = _corpus_key(texts, rules, tok)
        cache_file = Path(cache_dir) / f"tokens-{key}.npz"
        if cache_file.exists():
            try:
                return TokenizedCorpus.load(cache_file, key, len(texts))
            except FileNotFoundError:
                pass  # removed meanwhile: rebuilt below
            except (OSError, ValueError) as e:  # damaged: said once, rebuilt below and saved over it
                print(f"warning: {e}; rebuilding this cache entry", file=sys.stderr)
    if n_workers is None:
        n_workers = available_cores() if sum(map(len, texts)) >= POOL_MIN_CHARS else 1
    batches = [texts[i:i + chunk_size] for i in range(0, len(texts), chunk_size)]
    fast = rules is None and tok is word_tokenize  # the default pipeline: fast.py's ChunkTokenizer, straight to ids
    show = len(texts) >= 2000 if progress is None else progress
    bar = tqdm(total=len(texts), desc="tokenizing", unit="doc", disable=not show)
    try:
        if n_workers <= 1 or len(batches) <= 1:
            memo = ChunkTokenizer()
            results = (_tokenize_fast(b, memo) if fast else _tokenize_chunk((b, rules, tok)) for b in batches)
            with sigterm_interrupts(f"tokenizing {len(texts):,} texts; nothing was cached"):  # as with workers: said once, nothing cached
                corpus = _merge(results, len(texts), bar)
        else:
            ctx = worker_context()
            with (ctx.Pool(min(n_workers, len(batches)), initializer=_start_worker, initargs=(fast, os.getpid())) as pool,
                  sigterm_interrupts(f"tokenizing {len(texts):,} texts; nothing was cached")):  # leaving the pool stops its workers
                work = pool.imap(_tokenize_fast, batches) if fast else pool.imap(_tokenize_chunk, [(b, rules, tok) for b in batches])
                corpus = _merge(work, len(texts), bar)
    finally:
        bar.close()
    if cache_file is not None:
        corpus.save(cache_file, key)
    return corpus


def worker_context() -> mp.context.BaseContext:
    """How the tokenizing workers start: from a fork server where the platform has one (Linux, macOS), else
    spawned. Never forked from the caller: it may hold threads (torch's, once a model has run), and a child
    forked from a multi-threaded process can deadlock (Python 3.12 warns, 3.14 no longer forks by default).
    The fork server is a single-threaded process, started once per program, that imports the program's main
    module and this one; each worker is forked from it, in milliseconds, and imports nothing more."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", __name__])  # before the server starts; later calls change nothing
    return ctx


def _merge(results, n_docs: int, bar) -> TokenizedCorpus:
    """Join batch results, renumbering each worker's types into the global first-seen order.

    A result is (worker, new types, ids, lengths): the ids number the worker's types so far (worker None:
    this batch's types only). Batches come in document order, so a type a worker meets first in a batch is
    met no earlier in the corpus than that batch: adding each batch's new types in order keeps the
    first-seen order of the whole corpus."""
    index: dict[str, int] = {}
    remaps: dict[int, array] = {}
    all_ids, lengths = [], []
    for worker, types, ids, lens in results:
        remap = array("i") if worker is None else remaps.setdefault(worker, array("i"))
        remap.extend([index.setdefault(t, len(index)) for t in types])
        all_ids.append(np.frombuffer(remap, dtype=np.int32)[ids] if len(remap) else ids.copy())
        lengths.extend(lens)
        bar.update(len(lens))
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(all_ids) if all_ids else np.zeros(0, dtype=np.int32)
    return TokenizedCorpus(list(index), ids, offsets)


def tokenize_all(texts: Sequence[str], n_workers: int | None = None, **kwargs) -> list[list[str]]:
    """Tokenize many texts with all cores, keeping their order (fastai's ``tokenize_texts``)."""
    return tokenize_corpus(texts, n_workers, **kwargs).to_lists()


def numericalize_all(token_lists: Sequence[Sequence[str]], vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """Token lists -> ``(ids int32, offsets int64)``: document ``i`` is ``ids[offsets[i]:offsets[i+1]]``."""
    offsets = np.zeros(len(token_lists) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in token_lists], out=offsets[1:])
    get = vocab.stoi.get
    ids = np.fromiter((get(t, 0) for tokens in token_lists for t in tokens), dtype=np.int32, count=int(offsets[-1]))
    return ids, offsets
