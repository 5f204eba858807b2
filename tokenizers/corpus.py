"""Tokenizing many documents: fastai's ``tokenize_texts`` / ``parallel_tokenize``, plus a compact on-disk cache.

One text goes through three steps (chapter 10, "Word Tokenization with fastai")::

    >>> tokenize("The U.S. dollar $1 is $1.00.")
    ['xxbos', 'xxmaj', 'the', 'xxup', 'u.s', '.', 'dollar', '$', '1', 'is', '$', '1.00', '.']

1. the pre-rules of :mod:`tokenizers.rules` rewrite the whole string (``xxbos``, ``xxmaj``, ``xxrep`` ...);
2. the word tokenizer of :mod:`tokenizers.word` splits it as spaCy's English tokenizer does;
3. the post-rule ``replace_space`` turns a space inside a token into ``▁``.

A corpus is stored the way nanoGPT stores its data: every distinct token once (``types``), then the whole
corpus as one int32 array of type ids (``ids``) with document boundaries (``offsets``): document ``i`` is
``ids[offsets[i]:offsets[i + 1]]``. That takes 4 bytes a token instead of a Python string each, turns vocab
building into a ``bincount``, and numericalizing into one array lookup. Types are numbered in the order they
are first seen, so the counts keep fastai's tie order (first-seen) and the vocab equals fastai's.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .atomic import atomic_write
from .fast import ChunkTokenizer, apply_default_rules, cached_word_tokenizer
from .rules import DEFAULT_RULES, Rule, apply_rules, replace_space
from .vocab import Vocab
from .word import word_tokenize

Tokenizer = Callable[[str], list[str]]
CACHE_VERSION = "1"  # bump when the tokenizer's output changes, so old caches are not reused


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
        """Documents ``idxs`` (each cut to ``max_tokens`` if > 0), types renumbered in first-seen order,
        so a vocab built from the subset equals fastai's on those documents."""
        ids, offsets = select_docs(self.ids, self.offsets, idxs, max_tokens)
        uniq, first = np.unique(ids, return_index=True)
        order = uniq[np.argsort(first, kind="stable")]  # old type ids in first-seen order
        remap = np.zeros(len(self.types), dtype=np.int32)
        remap[order] = np.arange(len(order), dtype=np.int32)
        return TokenizedCorpus([self.types[i] for i in order], remap[ids], offsets)

    def save(self, path: str | os.PathLike) -> None:
        """Write the corpus as one ``.npz`` file (no pickle), atomically."""
        blob = [t.encode("utf-8", "surrogatepass") for t in self.types]
        type_offsets = np.zeros(len(blob) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in blob], out=type_offsets[1:])
        with atomic_write(path, "wb") as f:
            np.savez(f, ids=self.ids, offsets=self.offsets, type_offsets=type_offsets,
                     type_bytes=np.frombuffer(b"".join(blob), dtype=np.uint8))

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenizedCorpus:
        """Read a corpus written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            raw, bounds = z["type_bytes"].tobytes(), z["type_offsets"].tolist()
            types = [raw[a:b].decode("utf-8", "surrogatepass") for a, b in pairwise(bounds)]
            return cls(types, z["ids"], z["offsets"])


def select_docs(ids: np.ndarray, offsets: np.ndarray, idxs: Sequence[int] | np.ndarray,
                max_tokens: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Documents ``idxs`` of ``(ids, offsets)`` (each cut to ``max_tokens`` if > 0) as a new ``(ids, offsets)``."""
    idxs = np.asarray(idxs, dtype=np.int64)
    starts, ends = offsets[idxs], offsets[idxs + 1]
    if max_tokens > 0:
        ends = np.minimum(ends, starts + max_tokens)
    new_offsets = np.zeros(len(idxs) + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=new_offsets[1:])
    parts = [ids[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
    return (np.concatenate(parts) if parts else ids[:0]), new_offsets


def available_cores() -> int:
    """The number of cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_worker: ChunkTokenizer | None = None  # the memo of this worker process (see _start_worker)


def _start_worker() -> None:
    global _worker
    _worker = ChunkTokenizer()


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

    ``rules`` and ``tok`` must be picklable (module-level functions) when ``n_workers > 1``.
    """
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, not a str")
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"tokens-{_corpus_key(texts, rules, tok)}.npz"
        if cache_file.exists():
            try:
                return TokenizedCorpus.load(cache_file)
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry is rebuilt below
    n_workers = n_workers or available_cores()
    batches = [texts[i:i + chunk_size] for i in range(0, len(texts), chunk_size)]
    fast = rules is None and tok is word_tokenize  # the default pipeline: fast.py's ChunkTokenizer, straight to ids
    show = len(texts) >= 2000 if progress is None else progress
    bar = tqdm(total=len(texts), desc="tokenizing", unit="doc", disable=not show)
    if n_workers <= 1 or len(batches) <= 1:
        memo = ChunkTokenizer()
        results = (_tokenize_fast(b, memo) if fast else _tokenize_chunk((b, rules, tok)) for b in batches)
        corpus = _merge(results, len(texts), bar)
    else:
        cached_word_tokenizer()  # built once here, inherited by forked workers
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(min(n_workers, len(batches)), initializer=_start_worker if fast else None) as pool:
            work = pool.imap(_tokenize_fast, batches) if fast else pool.imap(_tokenize_chunk, [(b, rules, tok) for b in batches])
            corpus = _merge(work, len(texts), bar)
    bar.close()
    if cache_file is not None:
        corpus.save(cache_file)
    return corpus


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
