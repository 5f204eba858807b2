"""ClasLoader against fastai's pad_input_chunk (tests/fixtures/pad_chunk.json) and SortedDL
(tests/data_fixtures/sorted_dl.json, made by make_sorted_dl.py in the same folder)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from awdlstm.data.clas_loader import ClasLoader, LabelVocab, pad_chunk, pad_input_chunk, restore_order

SORTED_DL = Path(__file__).parent / "data_fixtures" / "sorted_dl.json"


def test_pad_input_chunk_matches_fastai(fixtures_dir):
    fx = json.loads((fixtures_dir / "pad_chunk.json").read_text())
    assert len(fx["cases"]) >= 3
    for case in fx["cases"]:
        samples = [(torch.tensor(s["x"]), s["y"]) for s in case["samples"]]
        got = pad_input_chunk(samples, pad_idx=case["pad_idx"], pad_first=case["pad_first"], seq_len=case["seq_len"])
        assert [(x.tolist(), y) for x, y in got] == [(p["x"], p["y"]) for p in case["padded"]], case["name"]
        # the loader's batches pad the same way
        dl = ClasLoader([s["x"] for s in case["samples"]], [s["y"] for s in case["samples"]],
                        bs=len(samples), seq_len=case["seq_len"], pad_first=case["pad_first"], pad_idx=case["pad_idx"])
        x, y = next(iter(dl))
        assert x.shape[1] == case["max_len"]
        want = {tuple(p["x"]) for p in case["padded"]}
        assert {tuple(r) for r in x.tolist()} == want
        assert dl.restore_order(x).tolist() == [p["x"] for p in case["padded"]]


def test_sorted_dl_order_matches_fastai():
    fx = json.loads(SORTED_DL.read_text())
    lens = fx["lens"]
    docs = [[5 + i] * n for i, n in enumerate(lens)]
    for case in fx["cases"]:
        dl = ClasLoader(docs, list(range(len(docs))), bs=case["bs"], seq_len=5, shuffle=case["shuffle"],
                        drop_last=case["drop_last"], seed=case["np_random_seed"])
        assert len(dl) == case["len_dl"]
        ys = torch.cat([y for _, y in dl]).tolist()
        assert ys == case["order"], case


def test_training_order_properties_and_epochs():
    rng = np.random.default_rng(1)
    lens = rng.integers(1, 300, size=1000)
    docs = [np.full(n, 7) for n in lens]
    dl = ClasLoader(docs, [0] * len(docs), bs=4, shuffle=True, seed=0)
    first = [x.shape for x, _ in dl]
    assert first[0][1] == lens.max()  # the longest batch comes first
    assert len(first) == len(dl) == 250
    second = dl.epoch_order(5)
    assert not np.array_equal(dl.epoch_order(1), second)
    dl.set_epoch(5)
    list(dl)
    assert np.array_equal(dl.order, second)
    # chunks of bs*50 = 200 documents are sorted: each batch is within one chunk, so its lengths are close
    val = ClasLoader(docs, [0] * len(docs), bs=4, shuffle=False)
    widths = [x.shape[1] for x, _ in val]
    assert widths == sorted(widths, reverse=True)


def test_labels_vocab_roundtrip_and_errors(tmp_path):
    docs = [[3, 4], [5], [6, 7, 8]]
    dl = ClasLoader(docs, ["pos", "neg", "pos"], bs=2)
    assert dl.label_vocab.itos == ["neg", "pos"]
    ys = torch.cat([y for _, y in dl])
    assert dl.restore_order(ys).tolist() == [1, 0, 1]
    path = tmp_path / "sub" / "labels.json"
    dl.label_vocab.save(path)
    lv = LabelVocab.load(path)
    assert lv.itos == ["neg", "pos"] and lv.encode(["pos"]) == [1] and lv.decode([0]) == ["neg"]
    with pytest.raises(ValueError, match="'meh'"):
        ClasLoader(docs, ["pos", "meh", "neg"], label_vocab=lv)
    with pytest.raises(ValueError, match="3 documents but 2 labels"):
        ClasLoader(docs, [0, 1])
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="bad.json"):
        LabelVocab.load(tmp_path / "bad.json")
    x, y = next(iter(ClasLoader(docs, None, bs=3)))
    assert y is None and x.shape == (3, 3)
    for ids in (torch.tensor([1, 0, 1]), np.array([1, 0, 1], dtype=np.int32), [1, 0, 1]):
        dl = ClasLoader(docs, ids, bs=3)
        assert dl.label_vocab is None and dl.restore_order(next(iter(dl))[1]).tolist() == [1, 0, 1]


def test_restore_order_helper():
    order = np.array([2, 0, 1])
    assert restore_order(torch.tensor([20, 0, 10]), order).tolist() == [0, 10, 20]
    assert restore_order(np.array([20, 0, 10]), order).tolist() == [0, 10, 20]
    with pytest.raises(ValueError, match="one prediction per input"):
        restore_order([1, 2], order)
    dl = ClasLoader([[1]] * 5, [0] * 5, bs=2, shuffle=True, seed=0)  # drop_last: one document left out
    preds = torch.cat([x[:, 0] for x, _ in dl])
    with pytest.raises(ValueError, match="drop_last"):
        dl.restore_order(preds)


@settings(max_examples=60, deadline=None)
@given(lens=st.lists(st.integers(1, 25), min_size=1, max_size=20), bs=st.integers(1, 6), seq_len=st.integers(1, 8),
       pad_first=st.booleans(), backwards=st.booleans(), shuffle=st.booleans(), seed=st.integers(0, 1000))
def test_padding_keeps_every_token_on_documented_side(lens, bs, seq_len, pad_first, backwards, shuffle, seed):
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    ids = np.arange(offsets[-1], dtype=np.int64) + 2  # no id is xxpad (1)
    dl = ClasLoader((ids, offsets), list(range(len(lens))), bs=bs, seq_len=seq_len, pad_first=pad_first,
                    backwards=backwards, shuffle=shuffle, drop_last=False, seed=seed)
    seen = []
    for x, y in dl:
        assert x.dtype == torch.int64 and y.dtype == torch.int64
        width = x.shape[1]
        assert width == max(lens[i] for i in y.tolist())  # padded to the longest document of the batch
        for row, d in zip(x.tolist(), y.tolist(), strict=True):
            doc = ids[offsets[d]:offsets[d + 1]].tolist()
            text = doc[::-1] if backwards else doc
            n_pad = width - len(doc)
            front = n_pad // seq_len * seq_len if pad_first else 0
            assert row == [1] * front + text + [1] * (n_pad - front)  # no token lost, padding where documented
            seen.append(d)
    assert sorted(seen) == list(range(len(lens)))
    assert restore_order(seen, dl.order) == list(range(len(lens)))


def test_pad_chunk_rejects_too_long():
    with pytest.raises(ValueError, match="shorter than the text"):
        pad_chunk([1, 2, 3], pad_len=2)
