"""A corpus bigger than memory, built once and shared by every rank and every machine (chapter 10's data
step, for `torchrun`; see tokenizers/stream.py for the folder it writes and data/stream_sources.py for the
texts it reads).

    corpus = shared_corpus(TextSource("csv", "big.csv"), cache_dir)   # a MappedCorpus: ids memory-mapped

The process group exists before the data is built, so under `torchrun` the ranks split the build:

1. every rank checks whether the corpus is already whole in its folder (all agree, or the build runs);
2. rank 0 drops a marker file in the folder; the ranks that see it share the folder (one file system). On a
   shared folder rank r tokenizes blocks r, r + world_size, ... and rank 0 merges; without one, the ranks of
   each machine split that machine's blocks (LOCAL_RANK) and local rank 0 merges: each machine builds once;
3. a barrier, then every rank maps the same files.

The language model's ids under its vocab are written the same way (`shared_ids`): by the rank that merged,
then mapped by all.
"""
from __future__ import annotations

import dataclasses
import os
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from awdlstm import distributed as D
from awdlstm.data.download import download_wikitext103, get_cache_dir
from awdlstm.data.sources import Texts
from awdlstm.data.stream_sources import (
    BLOCK_DOCS,
    blocks,
    corpus_plan,
    estimate_docs,
    iter_source,
    source_files,
)
from awdlstm.data.text_source import TextSource
from awdlstm.tokenizers.corpus import available_cores
from awdlstm.tokenizers.stream import (
    MappedCorpus,
    doc_counts,
    load_corpus,
    merge_blocks,
    numericalize_to,
    read_manifest,
    tokenize_blocks,
    vocab_key,
)
from awdlstm.tokenizers.vocab import Vocab


def _all_true(flag: bool) -> bool:
    """Whether `flag` holds on every rank."""
    return int(D.all_reduce_sum(torch.tensor([int(flag)])).item()) == D.world_size()


def _local() -> tuple[int, int]:
    """(this rank's index on its machine, ranks on its machine), as torchrun sets them."""
    return int(os.environ.get("LOCAL_RANK", "0")), int(os.environ.get("LOCAL_WORLD_SIZE", str(D.world_size())))


def folder_is_shared(folder: Path) -> bool:
    """Whether every rank sees the same `folder`: rank 0 writes a marker, the others look for it."""
    if D.world_size() == 1:
        return True
    folder.mkdir(parents=True, exist_ok=True)
    name = D.broadcast_str(f".shared-{uuid.uuid4().hex}" if D.is_main() else None)
    if D.is_main():
        (folder / name).write_text("")
    D.barrier()
    shared = _all_true((folder / name).exists())
    D.barrier()  # every rank has looked before the marker goes
    if D.is_main():
        (folder / name).unlink(missing_ok=True)
    return shared


def _builder(folder: Path) -> tuple[int, int, bool]:
    """(part, n_parts, merges): which blocks this rank tokenizes and whether it merges them."""
    if folder_is_shared(folder):
        return D.rank(), D.world_size(), D.is_main()
    local_rank, local_size = _local()
    return local_rank, local_size, local_rank == 0


def shared_corpus(source: TextSource, cache_dir: str | os.PathLike, n_workers: int | None = None,
                  progress: bool = True, block_docs: int = BLOCK_DOCS) -> MappedCorpus:
    """The streamed corpus of `source` in `cache_dir` (built, resumed or reused; split between the ranks)."""
    t0 = time.time()
    folder, key, info = corpus_plan(source, cache_dir, block_docs)
    if _all_true(read_manifest(folder, key) is not None):
        return load_corpus(folder, key)
    part, n_parts, merges = _builder(folder)
    whole = read_manifest(folder, key) is not None  # (a machine may have it when another does not)
    if not whole:
        files = source_files(source)
        total = estimate_docs(source, files)
        n_workers = n_workers or max(1, available_cores() // _local()[1])
        n = tokenize_blocks(blocks(iter_source(source), block_docs), folder, key, n_workers, part, n_parts,
                            total_docs=total, progress=progress and D.is_main())
    D.barrier()
    if not whole and merges:
        merge_blocks(folder, key, n, {**info, "built_by": n_parts, "n_blocks": n}, progress=progress and D.is_main())
    D.barrier()
    corpus = load_corpus(folder, key)
    corpus.built_s = time.time() - t0
    return corpus


def shared_ids(corpus: MappedCorpus, vocab: Vocab) -> np.ndarray:
    """The corpus's ids under `vocab` (int32, memory-mapped), written once per folder and mapped by all."""
    path = corpus.folder / f"ids-{vocab_key(vocab)}.npy"
    if D.world_size() == 1:
        return numericalize_to(corpus, vocab, path)
    _, _, merges = _builder(corpus.folder)
    if merges:
        numericalize_to(corpus, vocab, path)
    D.barrier()
    return np.load(path, mmap_mode="r")


LMPart = tuple[tuple[np.ndarray, np.ndarray], np.ndarray | None]  # ((ids, offsets), the documents read or None)


def mapped_lm_data(corpus: MappedCorpus, docs: np.ndarray, train_idx: np.ndarray, valid_idx: np.ndarray,
                   min_freq: int, max_vocab: int) -> tuple[Vocab, LMPart, LMPart]:
    """`finetune_lm`'s data step on a mapped corpus: the vocab of documents `docs` (their counts, in their
    first-seen order: the in-memory path's vocab), the ids under it (one file, mapped), and the training and
    validation documents as indices into it (`docs[train_idx]`, `docs[valid_idx]`), never copies."""
    counts = corpus.counts() if len(docs) == len(corpus) else doc_counts(corpus, docs)
    vocab = Vocab.from_counts(counts, min_freq=min_freq, max_vocab=max_vocab)
    data = (shared_ids(corpus, vocab), corpus.offsets)
    return vocab, (data, docs[train_idx]), (data, docs[valid_idx])


def n_tokens(part: LMPart) -> int:
    """Tokens in the documents of a training or validation part."""
    (ids, offsets), idxs = part
    if idxs is None:
        return int(offsets[-1])
    return int((np.asarray(offsets[idxs + 1]) - np.asarray(offsets[idxs])).sum())


STREAM_ABOVE = 256 << 20  # input bytes from which finetune_lm / pretrain_lm stream without being asked


def lm_texts(source: TextSource, stream: bool | None, cache_dir: str | os.PathLike | None,
             progress: bool = True) -> Texts | MappedCorpus:
    """The language model's texts: read into memory (`Texts`), or, with `stream` (None: when the files
    are over STREAM_ABOVE bytes), the corpus streamed into `cache_dir` and mapped (a `MappedCorpus`)."""
    if source.kind == "imdb" or stream is False:
        return source.read(labelled=False, progress=progress)
    if source.kind == "wikitext" and not source.path:
        source = dataclasses.replace(source, path=str(download_wikitext103(progress=progress)))
    files = source_files(source)
    if not all(f.is_file() for f in files):  # the reader names what is missing
        return source.read(labelled=False, progress=progress)
    if stream is None and sum(f.stat().st_size for f in files) < STREAM_ABOVE:
        return source.read(labelled=False, progress=progress)
    cache = Path(cache_dir) if cache_dir else get_cache_dir() / "tokens"
    return shared_corpus(source, cache, progress=progress)
