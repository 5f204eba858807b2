"""Numericalize: our Vocab equals fastai's make_vocab on the fixture's token counts (tests/fixtures/vocab.json)."""
import json
import pickle
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awdlstm.tokenizers.vocab import FAKE, Vocab
from conftest import FIXTURES

FIX = json.loads((FIXTURES / "vocab.json").read_text(encoding="utf-8"))
TOKENIZED = [json.loads(line) for line in (FIXTURES / "tokenize.jsonl").open(encoding="utf-8")]


@pytest.mark.parametrize("case", FIX["vocabs"], ids=lambda c: f"min{c['min_freq']}-max{c['max_vocab']}")
def test_from_counts_equals_fastai(case):
    counts = Counter(dict(FIX["counter"]["items"]))
    vocab = Vocab.from_counts(counts, min_freq=case["min_freq"], max_vocab=case["max_vocab"])
    assert vocab.itos == case["itos"]
    assert len(vocab) == case["len"]
    assert vocab.itos.count(FAKE) == case["n_xxfake"]


def test_build_from_token_lists_equals_fastai():
    # The counter in the fixture was made from the imdb + rt lines of tokenize.jsonl, in file order.
    docs = [d["tokens"] for d in TOKENIZED if d["source"] in ("imdb", "rt")]
    assert len(docs) == FIX["counter"]["n_docs"] and sum(map(len, docs)) == FIX["counter"]["n_tokens"]
    for case in FIX["vocabs"]:
        assert Vocab.build(docs, case["min_freq"], case["max_vocab"]).itos == case["itos"]


def test_special_ids_and_unknown():
    v = Vocab.build([["xxbos", "a", "b", "a"], ["xxbos", "a"]], min_freq=1)
    assert v.itos[:11] == "xxunk xxpad xxbos xxeos xxfld xxrep xxwrep xxup xxmaj a b".split()
    assert (v.stoi["xxunk"], v.stoi["xxpad"], v.stoi["xxbos"]) == (0, 1, 2)
    assert v.encode(["a", "zebra", "b", FAKE]) == [9, 0, 10, 0]
    assert v.decode([2, 9, 10]) == ["xxbos", "a", "b"]
    assert len(v) == 16 and v.itos[11:] == [FAKE] * 5


def test_a_length_already_a_multiple_of_8_gets_8_fakes():
    v = Vocab.build([[f"t{i}" for i in range(7)]], min_freq=1)  # 9 specials + 7 = 16
    assert len(v) == 24 and v.itos[16:] == [FAKE] * 8


def test_save_load_round_trip(tmp_path):
    v = Vocab.build([d["tokens"] for d in TOKENIZED], min_freq=2)
    v.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == v
    assert pickle.loads(pickle.dumps(v)) == v
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary file


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"itos": [1, 2]}')
    with pytest.raises(ValueError, match="bad.json"):
        Vocab.load(bad)
    bad.write_text("not json")
    with pytest.raises(ValueError, match="bad.json"):
        Vocab.load(bad)
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build([["a"]], min_freq=0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.text(max_size=4), max_size=20), max_size=10), st.integers(1, 3))
def test_encode_decode_round_trip(docs, min_freq):
    v = Vocab.build(docs, min_freq=min_freq)
    for doc in docs:
        ids = v.encode(doc)
        assert all(0 <= i < len(v) for i in ids)
        assert v.decode(ids) == [t if t in v else "xxunk" for t in doc]
