"""The streamed corpus (tokenizers/stream.py, data/stream_sources.py): the same vocab, ids, offsets and language-model
batches as the in-memory path on the embedded corpus; resumable after SIGKILL; a changed input is rebuilt; the
loaders read documents of a memory map by index, without copies."""
import csv
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import regex
import torch

from awdlstm.data.lm_loader import LMLoader
from awdlstm.data.lm_loader_fast import FastLMLoader
from awdlstm.data.sources import SAMPLE_CSV, imdb_embedded
from awdlstm.data.splits import random_split, sample
from awdlstm.data.stream_sources import blocks, corpus_plan, iter_csv, iter_source
from awdlstm.data.text_source import TextSource
from awdlstm.tokenizers.corpus import select_docs, tokenize, tokenize_corpus
from awdlstm.tokenizers.stream import (
    build_corpus,
    doc_counts,
    load_corpus,
    merge_blocks,
    numericalize_to,
    read_manifest,
    vocab_key,
)
from awdlstm.tokenizers.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def texts():
    """The sentences of the shipped sample of the embedded corpus (its 300 IMDb reviews, data/samples/, read
    as `imdb_embedded` reads them), one document each: 3,325 texts of every length, in CI too (no extra)."""
    return [s for t in imdb_embedded(SAMPLE_CSV).texts for s in regex.split(r"(?<=[.!?])\s+", t) if s.strip()]


@pytest.fixture(scope="module")
def both(texts, tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    streamed = build_corpus(blocks(((t, None) for t in texts), 300), folder, "k" * 32, n_workers=2, progress=False)
    return tokenize_corpus(texts, n_workers=2, progress=False), streamed


def test_streamed_build_equals_tokenize_corpus(both):
    mem, streamed = both
    assert isinstance(streamed.ids, np.memmap) and streamed.ids.dtype == np.int32
    assert streamed.types == mem.types
    np.testing.assert_array_equal(streamed.ids, mem.ids)
    np.testing.assert_array_equal(streamed.offsets, mem.offsets)
    assert list(streamed.counts().items()) == list(mem.counts().items())  # counts summed as blocks came
    assert streamed.manifest["n_tokens"] == len(mem.ids) == 95_875 and len(streamed) == 3325


@pytest.mark.parametrize("lm_docs", [0, 1500])
def test_same_vocab_and_lm_batches_as_the_in_memory_path(both, tmp_path, lm_docs):
    """finetune_lm's data step both ways: subset, vocab, numericalize, split (copies) vs indices into the map."""
    mem, streamed = both
    rng = np.random.default_rng(0)
    docs = sample(np.arange(len(mem)), lm_docs, rng)
    train_idx, valid_idx = random_split(len(docs), 0.1, rng)
    lm = mem.subset(docs)
    vocab = Vocab.from_counts(lm.counts(), min_freq=3, max_vocab=6000)
    ids, offsets = lm.numericalize(vocab)
    train, valid = select_docs(ids, offsets, train_idx), select_docs(ids, offsets, valid_idx)

    counts = streamed.counts() if lm_docs == 0 else doc_counts(streamed, docs, chunk_tokens=50_000)
    assert list(counts.items()) == list(lm.counts().items())
    svocab = Vocab.from_counts(counts, min_freq=3, max_vocab=6000)
    assert svocab == vocab
    vids = numericalize_to(streamed, svocab, tmp_path / f"ids-{vocab_key(svocab)}.npy", chunk_tokens=100_000)
    assert isinstance(vids, np.memmap)
    np.testing.assert_array_equal(vids, streamed.numericalize(vocab)[0])
    for Loader in (LMLoader, FastLMLoader):
        for part, sel, shuffle in ((train, train_idx, True), (valid, valid_idx, False)):
            a = Loader(part, bs=16, seq_len=20, shuffle=shuffle, seed=3)
            b = Loader((vids, streamed.offsets), bs=16, seq_len=20, shuffle=shuffle, seed=3, idxs=docs[sel])
            assert (a.n_tokens, len(a)) == (b.n_tokens, len(b))
            for epoch in (0, 1):
                a.set_epoch(epoch), b.set_epoch(epoch)
                for (x, y), (x2, y2) in zip(a, b, strict=True):
                    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_loaders_idxs_equal_selected_docs():
    rng = np.random.default_rng(1)
    lens = rng.integers(1, 30, size=40)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    ids = rng.integers(0, 100, size=offsets[-1]).astype(np.int32)
    sel = np.array([5, 3, 17, 30, 2, 39, 11])
    for Loader in (LMLoader, FastLMLoader):
        for backwards in (False, True):
            a = Loader(select_docs(ids, offsets, sel), bs=2, seq_len=5, seed=1, backwards=backwards, rank=1, world_size=2)
            b = Loader((ids, offsets), bs=2, seq_len=5, seed=1, backwards=backwards, idxs=sel, rank=1, world_size=2)
            assert all(torch.equal(x, x2) for (x, _), (x2, _) in zip(a, b, strict=True))
        with pytest.raises(IndexError, match="document indices"):
            Loader((ids, offsets), bs=2, seq_len=5, idxs=[40])


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows([t, "x"] for t in rows)


BUILD = """
import sys
from awdlstm.data.stream_sources import blocks, corpus_plan, iter_source
from awdlstm.data.text_source import TextSource
from awdlstm.tokenizers.stream import build_corpus
src = TextSource("csv", sys.argv[1])
folder, key, info = corpus_plan(src, sys.argv[2], 40)
build_corpus(blocks(iter_source(src), 40), folder, key, n_workers=1, info=info, progress=False)
"""


def test_sigkill_mid_build_then_resume_gives_identical_files(texts, tmp_path):
    csv_path = tmp_path / "in.csv"
    _write_csv(csv_path, texts[:2400])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, "-c", BUILD, str(csv_path), str(clean)], env=env, check=True, timeout=120)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", BUILD, str(csv_path), str(killed)], env=env)
    deadline = time.time() + 60
    while len(list(killed.glob("corpus-*/blocks-*/*.npz"))) < 8 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (folder,) = killed.glob("corpus-*")
    kept = {p: p.stat().st_mtime_ns for p in folder.glob("blocks-*/*.npz")}
    assert len(kept) >= 8 and read_manifest(folder) is None  # blocks written, the corpus not whole
    src = TextSource("csv", str(csv_path))
    folder2, key, info = corpus_plan(src, killed, 40)
    assert folder2 == folder
    from awdlstm.tokenizers import stream
    written = []
    real = stream._write_block
    stream._write_block = lambda job: written.append(job[0]) or real(job)
    try:
        back = build_corpus(blocks(iter_source(src), 40), folder, key, n_workers=1, info=info, progress=False)
    finally:
        stream._write_block = real
    assert not set(written) & set(kept) and len(written) == 60 - len(kept)  # resumed after the kept blocks
    (clean_folder,) = clean.glob("corpus-*")
    for name in ("ids.npy", "offsets.npy", "counts.npy"):
        assert (folder / name).read_bytes() == (clean_folder / name).read_bytes(), name
    assert back.types == load_corpus(clean_folder).types
    assert not list(folder.glob("blocks-*"))  # the blocks go once the corpus is whole


def test_a_second_run_reuses_and_a_changed_input_is_rebuilt(texts, tmp_path):
    csv_path = tmp_path / "in.csv"
    _write_csv(csv_path, texts[:300])
    src = TextSource("csv", str(csv_path))
    folder, key, info = corpus_plan(src, tmp_path / "cache", 100)
    first = build_corpus(blocks(iter_source(src), 100), folder, key, n_workers=1, info=info, progress=False)
    again_folder, again_key, again_info = corpus_plan(src, tmp_path / "cache", 100)
    assert (again_folder, again_key) == (folder, key) and again_info["fingerprint"] == info["fingerprint"]
    _write_csv(csv_path, texts[:299] + ["A changed last review."])
    folder3, key3, info3 = corpus_plan(src, tmp_path / "cache", 100)
    assert folder3 == folder and key3 != key and read_manifest(folder, key3) is None  # not reused
    changed = build_corpus(blocks(iter_source(src), 100), folder3, key3, n_workers=1, info=info3, progress=False)
    assert changed[299] == tokenize("A changed last review.") != first[299]
    assert changed[298] == first[298]
    os.utime(csv_path)  # touched, not changed: hashed again and reused
    assert corpus_plan(src, tmp_path / "cache", 100)[1] == key3
    assert [t for t, _ in iter_csv(csv_path)] == texts[:299] + ["A changed last review."]


def _fake_blocks(folder, key, n_blocks, block_tokens, n_types, rng):
    """Block files as tokenize_blocks writes them: random ids over `n_types` types."""
    from awdlstm.tokenizers.atomic import atomic_write
    from awdlstm.tokenizers.stream import _pack_types, block_path
    for i in range(n_blocks):
        ids = rng.integers(0, n_types, size=block_tokens).astype(np.int32)
        ids[:n_types] = np.arange(n_types)  # every type seen, in order
        lengths = np.full(block_tokens // 1000, 1000, dtype=np.int64)
        tb, to = _pack_types([f"w{j}" for j in range(n_types)])
        with atomic_write(block_path(folder, key, i)) as f:
            np.savez(f, ids=ids, lengths=lengths, type_bytes=tb, type_offsets=to, valid=np.zeros(0, np.uint8))


def test_memory_stays_flat_on_a_corpus_bigger_than_allowed(tmp_path):
    """32M tokens (128 MiB of ids): merging, mapping, counting a subset, numericalizing and batching allocate
    at most 24 MiB (a block, a chunk; tracemalloc sees numpy's buffers), a fraction of the ids: the map is never copied."""
    allowed = 24 << 20
    key = "m" * 32
    _fake_blocks(tmp_path, key, 32, 1_000_000, 5000, np.random.default_rng(0))
    tracemalloc.start()
    try:
        merge_blocks(tmp_path, key, 32, progress=False)
        corpus = load_corpus(tmp_path, key)
        assert corpus.ids.nbytes == 128_000_000
        docs = np.arange(0, len(corpus), 2)
        vocab = Vocab.from_counts(doc_counts(corpus, docs, chunk_tokens=1 << 19), min_freq=1, max_vocab=3000)
        vids = numericalize_to(corpus, vocab, tmp_path / "vids.npy", chunk_tokens=1 << 20)
        dl = FastLMLoader((vids, corpus.offsets), bs=64, seq_len=70, seed=0, idxs=docs)
        for _i, _ in zip(range(50), dl):
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < allowed, f"peak {peak / 2**20:.1f} MiB"
    assert dl.n_tokens == 16_000_000 and len(corpus.types) == 5000
