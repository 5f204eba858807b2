"""CharTokenizer (the chapter 10 questionnaire's character tokenizer): exact round trip, atomic specials."""

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awdlstm.tokenizers.char import CharTokenizer
from awdlstm.tokenizers.rules import SPECIAL_TOKENS, apply_rules

HARD = ["", " ", "  a  ", "\t\n\r\n", "😀👍🏽 日本語", "e\u0301", "\x00\x85\u2028", "lone \ud800", "▁ <0xE2>", "x" * 50]


def test_characters_and_atomic_specials():
    tok = CharTokenizer()
    assert tok("xxbos hi") == ["xxbos", " ", "h", "i"]
    assert tok("a\nb") == ["a", "\n", "b"]
    assert tok("(xxmaj)xxupxxrep") == ["(", "xxmaj", ")", "xxup", "xxrep"]
    assert tok("xxwrep") == ["xxwrep"] and tok("xxbo") == list("xxbo")
    text = apply_rules("The MOVIE was sooo good")
    pieces = tok(text)
    assert [p for p in pieces if len(p) > 1] == ["xxbos", "xxmaj", "xxup", "xxrep"]
    assert all(len(p) == 1 for p in pieces if p not in SPECIAL_TOKENS)


def test_round_trip_hard_strings():
    tok = CharTokenizer()
    for s in HARD:
        assert tok.decode(tok(s)) == s


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=5), st.sampled_from(SPECIAL_TOKENS)), max_size=10))
def test_round_trip_property(parts):
    tok = CharTokenizer()
    s = "".join(parts)
    pieces = tok(s)
    assert tok.decode(pieces) == s
    assert sum(p in SPECIAL_TOKENS for p in pieces) >= sum(p in SPECIAL_TOKENS for p in parts)


def test_train_vocab_save_load_pickle(tmp_path):
    tok = CharTokenizer.train(["xxbos abca", "xxbos b!"], min_freq=1)
    assert tok.pieces == SPECIAL_TOKENS + [" ", "!", "a", "b", "c"] and tok.vocab_size == 14
    assert CharTokenizer.train(["abca"], min_freq=2).chars == ["a"]
    tok.save(tmp_path / "char.json")
    back = CharTokenizer.load(tmp_path / "char.json")
    assert back == tok and back("xxbos ab") == tok("xxbos ab")
    again = pickle.loads(pickle.dumps(tok))
    assert again == tok and again("xxmaj q") == ["xxmaj", " ", "q"]
    (tmp_path / "bad.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="not a char tokenizer"):
        CharTokenizer.load(tmp_path / "bad.json")


def test_bad_input():
    with pytest.raises(TypeError, match="str"):
        CharTokenizer()(3)
    with pytest.raises(TypeError, match="iterable"):
        CharTokenizer.train("abc")
    with pytest.raises(ValueError, match="distinct"):
        CharTokenizer(special_tokens=["xxa", "xxa"])


def test_repr_tells_tokenizers_apart():
    assert repr(CharTokenizer(["a"])) != repr(CharTokenizer(["b"])) and repr(CharTokenizer()) == repr(CharTokenizer())
