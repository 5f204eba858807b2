"""SubwordTokenizer (chapter 10, "Subword Tokenization"): unigram LM training, exact round trip, atomic specials."""

import itertools
import json
import math
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awdlstm.tokenizers.corpus import worker_context
from awdlstm.tokenizers.rules import SPECIAL_TOKENS, apply_rules
from awdlstm.tokenizers.subword import BYTE_PIECES, SPACE, SubwordTokenizer, segments
from awdlstm.tokenizers.unigram import _expected_counts, _Lattices, _viterbi, digamma

HARD = [
    "", " ", "  ", "\t", "\n", "\r\n", " \n \t ", "   leading and trailing   ", "a  b   c\t\td\n\ne",
    "Hello, World!", "I'm here... right?!", "😀🎉 emoji 👍🏽 and ZWJ 👨‍👩‍👧", "日本語のテキスト 中文 한국어",
    "control \x00\x01\x07\x1b chars \x7f\x85\u2028\u2029", "unseen: ǅ Ꙭ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ⅻ ½ ²", "e\u0301 combining",
    "a literal ▁ and ▁▁ and ▁xxbos", "<0xE2> looks like a byte piece", "xxbos xxmaj hello xxup world",
    "(xxbos)xxmajxxup", "xxbosxxbos", "xxrepxxwrep xxunk", "lone surrogate \ud800 here", "ß ﬁ Ǆ İ",
    "abcабвαβγ mixed scripts", "1990s 3.14 -42 1,000", "Ünïcödé", "\u200b\ufeff zero width", "x" * 300,
]


def _texts(fixtures_dir):
    with open(fixtures_dir / "tokenize.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


@pytest.fixture(scope="module")
def texts(fixtures_dir):
    """The fixture's 383 texts through fastai's rules (as in the pipeline): xxbos/xxmaj/... appear in them."""
    return [apply_rules(t) for t in _texts(fixtures_dir)]


@pytest.fixture(scope="module")
def tok(texts):
    return SubwordTokenizer.train(texts, 400, progress=False)


def test_round_trip_hard_strings(tok):
    for s in HARD:
        pieces = tok.encode(s)
        assert tok.decode(pieces) == s, (s, pieces)
        assert all(isinstance(p, str) and p for p in pieces)
    assert tok.encode("") == [] and tok.decode([]) == ""


def test_round_trip_training_texts(tok, texts, fixtures_dir):
    for t in texts + _texts(fixtures_dir):
        assert tok.decode(tok(t)) == t


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip_property(tok, s):
    assert tok.decode(tok.encode(s)) == s


words = st.sampled_from([*SPECIAL_TOKENS, " ", "  ", "\n", "the", "movie", ",", "▁", "é", "😀", "x", "1", "Ab"])


@settings(max_examples=200, deadline=None)
@given(st.lists(words, max_size=20))
def test_round_trip_property_specials(tok, parts):
    s = "".join(parts)
    pieces = tok.encode(s)
    assert tok.decode(pieces) == s
    # a special token is always one piece
    n_special = sum(p in SPECIAL_TOKENS or (p[:1] == SPACE and p[1:] in SPECIAL_TOKENS) for p in pieces)
    assert n_special == sum(p in SPECIAL_TOKENS for p in parts)


def test_pieces_shape_the_text(tok):
    """Words start with ▁, punctuation is its own piece, the specials of fastai's rules are single pieces."""
    text = apply_rules("This movie, which I just discovered at the video store, has apparently sat around.")
    pieces = tok(text)
    assert pieces[:2] == ["▁xxbos", "▁xxmaj"]
    assert "," in pieces and "." == pieces[-1]
    assert "".join(pieces).replace(SPACE, " ")[1:] == text
    assert "xxbos" in tok("(xxbos)") and tok("a\nxxmaj b")[2] == "xxmaj"


def test_specials_atomic_and_never_learned(tok):
    learned = [p for p, _ in tok.learned]
    for t in SPECIAL_TOKENS:
        assert not any(t in p for p in learned), t
        assert tok(t) == [SPACE + t] and tok("a" + t) == ["▁a", t]
        assert tok(f"{t} {t}") == [SPACE + t] * 2
    assert tok.pieces[: len(SPECIAL_TOKENS)] == [SPACE + t for t in SPECIAL_TOKENS]
    assert tok.reserved[: len(SPECIAL_TOKENS)] == SPECIAL_TOKENS and not set(tok.pieces) & set(tok.reserved)


@pytest.fixture(scope="module")
def sized(texts):
    """Three vocab sizes (coverage 0.999 keeps the fixture's rarest characters out, so 150 is possible)."""
    return {v: SubwordTokenizer.train(texts, v, character_coverage=0.999, progress=False) for v in (150, 500, 1500)}


def test_vocab_size_respected(sized):
    for size, t in sized.items():
        assert t.vocab_size == size == len(t.pieces) == len(set(t.pieces))
        assert not set(t.pieces) & set(BYTE_PIECES)


def test_vocab_too_small_is_a_clear_error(texts):
    with pytest.raises(ValueError, match="vocab"):
        SubwordTokenizer.train(texts, 40, progress=False)
    with pytest.raises(ValueError, match="vocab_size"):
        SubwordTokenizer.train(texts, 0, progress=False)
    with pytest.raises(TypeError, match="iterable"):
        SubwordTokenizer.train("one string", 100, progress=False)
    with pytest.raises(ValueError, match="empty"):
        SubwordTokenizer.train([], 100, progress=False)


def test_learned_pieces_follow_sentencepiece_rules(tok):
    """▁ only at the start, never two classes (letters, digits, punctuation, whitespace) in one piece."""
    for p, score in tok.learned:
        assert SPACE not in p[1:] and score <= 0
        body = p[1:] if p.startswith(SPACE) and len(p) > 1 else p
        assert len(segments(" " + body)) == 1, p
    assert SPACE in tok.pieces


def test_bigger_vocab_fewer_tokens(sized, texts):
    """The chapter's observation: a larger vocab gives longer pieces, hence fewer tokens per text."""
    n = [sum(len(sized[v](x)) for x in texts) for v in (150, 500, 1500)]
    assert n[0] > n[1] > n[2]
    assert all(sized[v].decode(sized[v](x)) == x for v in sized for x in texts[:50])


def test_unseen_characters_become_bytes(tok):
    assert tok("Ꙭ") == ["▁", "<0xEA>", "<0x99>", "<0xAC>"]
    assert tok("▁") == ["▁", "<0xE2>", "<0x96>", "<0x81>"]  # a typed ▁ is not a space


def test_save_load_equality(tok, tmp_path):
    path = tmp_path / "sub.json"
    tok.save(path)
    back = SubwordTokenizer.load(path)
    assert back == tok and back.pieces == tok.pieces
    for s in HARD:
        assert back(s) == tok(s)
    assert json.loads(path.read_text(encoding="utf-8"))["pieces"][0][0] in tok.pieces
    (tmp_path / "bad.json").write_text('{"format": "something else"}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a subword tokenizer"):
        SubwordTokenizer.load(tmp_path / "bad.json")
    d = json.loads(path.read_text(encoding="utf-8"))
    d["pieces"].append(["<0x41>", -1.0])
    (tmp_path / "bad2.json").write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(ValueError, match="malformed.*invalid piece"):
        SubwordTokenizer.load(tmp_path / "bad2.json")


def _encode_in_worker(args):
    tok, s = args
    return tok(s)


def test_pickle_and_worker_process(tok):
    back = pickle.loads(pickle.dumps(tok))
    assert back == tok and all(back(s) == tok(s) for s in HARD)
    with ProcessPoolExecutor(max_workers=1, mp_context=worker_context()) as ex:  # as tokenize_corpus starts them
        assert list(ex.map(_encode_in_worker, [(tok, s) for s in HARD[:5]])) == [tok(s) for s in HARD[:5]]


def test_deterministic_training(texts):
    a = SubwordTokenizer.train(texts[:150], 200, progress=False)
    b = SubwordTokenizer.train(list(texts[:150]), 200, progress=False)
    assert a.learned == b.learned


def test_encode_is_the_best_segmentation(tok):
    """Viterbi: no other segmentation of a word into vocab pieces has a higher total log-probability."""
    scores = dict(tok.learned)
    for word in ["▁understanding", "▁unbelievable", "▁xylophone", "▁performances"]:
        best = sum(scores[p] for p in tok(word[1:]))
        n = len(word)
        for cuts in itertools.product([0, 1], repeat=n - 1):
            bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
            parts = [word[i:j] for i, j in zip(bounds[:-1], bounds[1:], strict=True)]
            if all(p in scores for p in parts):
                assert sum(scores[p] for p in parts) <= best + 1e-9


def test_digamma():
    x = np.array([0.5, 1.0, 2.0, 7.5, 1e6, 0.013, 3.3])  # reference values: scipy.special.digamma
    want = [-1.9635100260214235, -0.5772156649015329, 0.42278433509846713, 1.9467574842460866,
            13.81551005796419, -77.47910924410468, 1.0348224890596216]
    np.testing.assert_allclose(digamma(x), want, rtol=1e-10)


def _toy_lattice():
    """The segment 'abc' over pieces a b c ab bc (ids 0..4), NONE = 5; end-indexed layout (1, 3, 3)."""
    E = np.full((1, 3, 3), 5)
    E[0, 0, 0] = 0  # a
    E[0, 1, 0], E[0, 1, 1] = 1, 3  # b, ab
    E[0, 2, 0], E[0, 2, 1] = 2, 4  # c, bc
    lat = _Lattices(E, np.array([3]), np.array([2.0]))
    lat.compact(np.array([True] * 5 + [False]))
    return lat


def test_forward_backward_matches_brute_force():
    P = np.array([0.2, 0.1, 0.3, 0.25, 0.15, 0.0])
    paths = [[0, 1, 2], [3, 2], [0, 4]]  # every segmentation of 'abc'
    probs = [math.prod(P[p] for p in path) for path in paths]
    want = np.zeros(6)
    for path, pr in zip(paths, probs, strict=True):
        for p in path:
            want[p] += 2.0 * pr / sum(probs)
    np.testing.assert_allclose(_expected_counts(_toy_lattice(), P), want, rtol=1e-12)


def test_vectorized_viterbi():
    LP = np.log(np.array([0.2, 0.1, 0.3, 0.25, 0.15, 1e-300]))
    score, rows, ids = _viterbi(_toy_lattice(), LP)
    assert sorted(ids.tolist()) == [2, 3] and rows.tolist() == [0, 0]  # ab c: 0.075 > a bc 0.03 > a b c 0.006
    assert score[0] == pytest.approx(math.log(0.25 * 0.3))


def test_tiny_corpora():
    t = SubwordTokenizer.train(["xxbosabc", "abcabc"], 30, progress=False)
    assert SPACE in t.pieces and t.decode(t("abc abd")) == "abc abd"
    with pytest.raises(ValueError, match="no characters"):
        SubwordTokenizer.train(["xxbos", "xxmaj"], 30, progress=False)


def test_repr_tells_tokenizers_apart(tok, sized):
    """tokenizers/corpus.py keys its cache on repr(tok): different vocabs must give different reprs."""
    assert repr(tok) == repr(pickle.loads(pickle.dumps(tok)))
    assert len({repr(t) for t in sized.values()} | {repr(tok)}) == 4
