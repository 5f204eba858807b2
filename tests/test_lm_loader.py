"""LMLoader (plain) and FastLMLoader against fastai's LMDataLoader (tests/fixtures/lm_loader.json), against each
other, and their stream properties."""
import json
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from awdlstm.data.lm_loader import LMLoader, flatten_docs
from awdlstm.data.lm_loader_fast import FastLMLoader

LOADERS = pytest.mark.parametrize("Loader", [LMLoader, FastLMLoader], ids=["plain", "fast"])


@pytest.fixture(scope="module")
def lm_fixture(fixtures_dir):
    return json.loads((fixtures_dir / "lm_loader.json").read_text())


@LOADERS
@pytest.mark.parametrize("case_idx", [0, 1])
def test_matches_fastai_every_batch(lm_fixture, case_idx, Loader):
    case = lm_fixture["cases"][case_idx]
    dl = Loader(lm_fixture["docs"], bs=case["bs"], seq_len=case["seq_len"], shuffle=False)
    assert (dl.bl, dl.n_batches, dl.last_len, len(dl)) == (case["bl"], case["n_batches"], case["last_len"], case["len_dl"])
    batches = list(dl)
    assert len(batches) == case["n_batches"]
    for (x, y), want in zip(batches, case["batches"], strict=True):
        assert x.dtype == torch.int64 and y.dtype == torch.int64
        assert x.tolist() == want["x"]
        assert y.tolist() == want["y"]
    assert batches[-1][0].shape == (case["bs"], case["last_len"])


@LOADERS
def test_ids_offsets_input_equals_list_input(lm_fixture, Loader):
    docs = lm_fixture["docs"]
    ids = np.concatenate([np.asarray(d, dtype=np.int32) for d in docs])
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    a = list(Loader(docs, bs=4, seq_len=5, shuffle=False))
    b = list(Loader((ids, offsets), bs=4, seq_len=5, shuffle=False))
    c = list(Loader([torch.tensor(d) for d in docs], bs=4, seq_len=5, shuffle=False))
    for (xa, ya), (xb, yb), (xc, yc) in zip(a, b, c, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(xa, xc) and torch.equal(ya, yc)
        assert xb.dtype == torch.int64


@LOADERS
def test_backwards_reverses_every_document(lm_fixture, Loader):
    docs = lm_fixture["docs"]
    fwd = Loader([d[::-1] for d in docs], bs=3, seq_len=7, shuffle=False)
    bwd = Loader(docs, bs=3, seq_len=7, shuffle=False, backwards=True)
    for (xf, yf), (xb, yb) in zip(fwd, bwd, strict=True):
        assert torch.equal(xf, xb) and torch.equal(yf, yb)


@LOADERS
def test_shuffle_moves_documents_not_words_and_is_reproducible(lm_fixture, Loader):
    docs = lm_fixture["docs"]
    dl = Loader(docs, bs=1, seq_len=1000, shuffle=True, seed=3)
    orders = [dl.epoch_order(e).tolist() for e in range(4)]
    assert len({tuple(o) for o in orders}) > 1  # the order changes between epochs
    for epoch in range(4):
        dl.set_epoch(epoch)
        (x, y), = list(dl)
        stream = np.concatenate([docs[i] for i in orders[epoch]])
        assert x[0].tolist() == stream[:-1].tolist() and y[0].tolist() == stream[1:].tolist()
    assert dl.epoch == 4  # each iteration moves to the next epoch
    again = Loader(docs, bs=1, seq_len=1000, shuffle=True, seed=3)
    assert [again.epoch_order(e).tolist() for e in range(4)] == orders
    torch.manual_seed(0)
    s1 = Loader(docs, bs=2, seq_len=5).seed
    torch.manual_seed(0)
    assert Loader(docs, bs=2, seq_len=5).seed == s1


@LOADERS
def test_errors(Loader):
    with pytest.raises(ValueError, match="too small"):
        Loader([[1, 2, 3]], bs=4, seq_len=5)
    with pytest.raises(ValueError, match="offsets"):
        flatten_docs((np.arange(5), np.array([0, 2, 4])))
    with pytest.raises(ValueError, match="bs and seq_len"):
        Loader([[1, 2, 3]], bs=0)
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        Loader([[1, 2, 3, 4, 5, 6]], bs=3, world_size=2)


@LOADERS
@settings(max_examples=60, deadline=None)
@given(lens=st.lists(st.integers(0, 30), min_size=1, max_size=25), bs=st.integers(1, 6),
       seq_len=st.integers(1, 9), shuffle=st.booleans(), backwards=st.booleans(), seed=st.integers(0, 2**31 - 2))
def test_every_token_once_per_epoch_in_order(Loader, lens, bs, seq_len, shuffle, backwards, seed):
    total = sum(lens)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    ids = np.arange(total, dtype=np.int64) + 10  # distinct ids: every stream position is identifiable
    if total - 1 < bs:
        with pytest.raises(ValueError):
            Loader((ids, offsets), bs=bs, seq_len=seq_len, shuffle=shuffle, backwards=backwards, seed=seed)
        return
    dl = Loader((ids, offsets), bs=bs, seq_len=seq_len, shuffle=shuffle, backwards=backwards, seed=seed)
    order = dl.epoch_order()
    docs = [ids[offsets[i]:offsets[i + 1]] for i in order]
    stream = np.concatenate([d[::-1] if backwards else d for d in docs])
    batches = list(dl)
    assert len(batches) == len(dl)
    xs = torch.cat([x for x, _ in batches], dim=1).numpy()  # (bs, bl): each row is one mini-stream
    ys = torch.cat([y for _, y in batches], dim=1).numpy()
    bl = dl.bl
    assert xs.shape == (bs, bl) and bl == (total - 1) // bs
    for r in range(bs):
        assert xs[r].tolist() == stream[r * bl:(r + 1) * bl].tolist()  # contiguous, in order
        assert ys[r].tolist() == stream[r * bl + 1:(r + 1) * bl + 1].tolist()  # shifted by one
    # every token of the kept stream exactly once
    assert sorted(xs.reshape(-1).tolist()) == sorted(stream[:bs * bl].tolist())


def test_fast_yields_the_plain_loaders_batches(lm_fixture):
    """FastLMLoader gathers what LMLoader cuts from the stream: the same tensors, epoch after epoch."""
    rng = np.random.default_rng(7)
    lens = rng.integers(0, 40, size=60)  # empty documents included
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    ids = rng.integers(0, 500, size=int(offsets[-1]), dtype=np.int32)
    corpora = {"fastai fixture": lm_fixture["docs"], "random": (ids, offsets)}
    n_compared = 0
    for name, docs in corpora.items():
        for bs, seq_len in [(1, 5), (3, 7), (4, 5), (8, 3), (16, 72), (5, 1000)]:
            for shuffle in (False, True):
                for backwards, world_size in [(False, 1), (True, 1), (False, 2)]:
                    if bs % world_size:
                        continue
                    for rank in range(world_size):
                        kw = dict(bs=bs, seq_len=seq_len, shuffle=shuffle, backwards=backwards, seed=11,
                                  rank=rank, world_size=world_size)
                        plain, fast = LMLoader(docs, **kw), FastLMLoader(docs, **kw)
                        assert len(plain) == len(fast)
                        for epoch in range(3):  # each pass moves both to the next (shuffled) epoch
                            a, b = list(plain), list(fast)
                            assert len(a) == len(b) == len(plain), (name, kw, epoch)
                            for (xa, ya), (xb, yb) in zip(a, b, strict=True):
                                assert xa.dtype == xb.dtype == torch.int64
                                assert torch.equal(xa, xb) and torch.equal(ya, yb), (name, kw, epoch)
                                n_compared += 1
                        assert plain.epoch == fast.epoch == 3
    assert n_compared > 1000


def test_big_corpus_first_batch_fast_and_cost_independent_of_size():
    """FastLMLoader, 10M tokens in 100k documents: construction + first batch well under a second on one core."""
    rng = np.random.default_rng(0)
    lens = rng.integers(1, 200, size=100_000)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    ids = rng.integers(0, 60_000, size=int(offsets[-1]), dtype=np.int32)
    t0 = time.perf_counter()
    dl = FastLMLoader((ids, offsets), bs=64, seq_len=72, seed=0)
    it = iter(dl)
    x, y = next(it)
    first = time.perf_counter() - t0
    assert x.shape == (64, 72) and dl.ids is ids  # the flat array is used as is, never copied
    t0 = time.perf_counter()
    for _ in range(200):
        next(it)
    per_batch = (time.perf_counter() - t0) / 200
    assert first < 2.0, first
    assert per_batch < 0.01, per_batch


def test_docstring_examples_run():
    import doctest

    from awdlstm.data import clas_loader, lm_loader, lm_loader_fast
    for mod in (lm_loader, lm_loader_fast, clas_loader):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, mod.__name__
