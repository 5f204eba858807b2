"""tokenizers/fast.py and word_fast.py, the default tokenizer's caches, against the plain pipeline (rules.py one
by one, word.py, replace_space: corpus.tokenize) token for token: ChunkTokenizer, CachedWordTokenizer,
tokenize_fast."""
import json
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from awdlstm.tokenizers.corpus import tokenize, tokenize_corpus
from awdlstm.tokenizers.fast import ChunkTokenizer
from awdlstm.tokenizers.spacy_tables import PREFIXES, SUFFIXES
from awdlstm.tokenizers.word import WordTokenizer
from awdlstm.tokenizers.word_fast import CachedWordTokenizer, tokenize_fast
from conftest import FIXTURES

LINES = [json.loads(line) for line in (FIXTURES / "tokenize.jsonl").open(encoding="utf-8")]
TEXTS = [line["text"] for line in LINES]

# Each one takes a path of its own: whitespace at the ends of chunks, whitespace-only chunks, the ends of the
# text, word repetition (also made by replace_rep), special cases glued to words, double spaces.
TRICKY = [
    "The end. <br /><br />The next one.",
    "end.<br /><br /> Next \n\n one\n",
    "\n\nThe first chunk starts with newlines",
    "a \n b  \n\n  c \x85 d\x85e \u2003 f",
    "  leading and trailing  spaces  ",
    "go go go go !",
    "The the the THE end",
    "333 3 3 and 1000 000 000",
    "hmmm hmmm hmmm hmm",
    "nice film:) really :) (:",
    "a/b/c #hash \\back OK OK OK",
    "I AM SHOUTING. Quiet now",
    "",
    " ",
    "\n",
    "x\ty\u00a0z",
]


def _check(texts: list[str]) -> None:
    memo = ChunkTokenizer()
    first_seen: dict[str, None] = {}
    for text in texts:
        expected = tokenize(text)
        first_seen.update(dict.fromkeys(expected))
        ids = np.frombuffer(memo.encode(text), dtype=np.int32).tolist()
        assert [memo.types[i] for i in ids] == expected, repr(text)
    assert memo.types == list(first_seen)  # first-seen order, as fastai's Counter


def test_tricky_texts_equal_tokenize_in_any_order():
    _check(TRICKY)
    _check(TRICKY[::-1])
    _check(TRICKY + TRICKY)  # the second time every chunk is known


def test_fastai_fixture_texts_equal_tokenize():
    _check(TEXTS)
    _check(TEXTS[::-1] + TEXTS)


def test_new_types_hands_out_each_type_once():
    memo = ChunkTokenizer()
    memo.encode("Hello there.")
    first = memo.new_types()
    memo.encode("Hello again.")
    assert first == ["xxbos", "xxmaj", "hello", "there", "."] and memo.new_types() == ["again"]
    assert memo.new_types() == []


def test_a_full_memo_is_emptied_and_the_types_stay():
    memo = ChunkTokenizer(max_chunks=3)
    first = memo.encode("a b c d")
    memo.encode("e f g h")  # more chunks than max_chunks: the memo starts again
    assert memo.encode("a b c d") == first
    assert memo.types == ["xxbos", "a", "b", "c", "d", "e", "f", "g", "h"]


ALPHABET = st.sampled_from(list("aAbB1 .,:;!?'\"()-/#\\<>&@$%*") + ["\n", "\t", "\x85", "\u00a0", "<br />",
                                                                        "&amp;", "...", ":)", "n't", "U.S.", "zzz"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(ALPHABET, max_size=30).map("".join), min_size=1, max_size=4))
def test_any_text_equals_tokenize(texts):
    _check(texts)


def test_fixture_texts_plain_and_fast_paths_give_identical_tokens():
    """The 383 fixture texts: the plain pipeline, tokenize_fast (warm and cold caches) and tokenize_corpus (which
    chooses ChunkTokenizer) give the same tokens, which are fastai's."""
    assert len(TEXTS) == 383
    plain = [tokenize(t) for t in TEXTS]
    assert plain == [line["tokens"] for line in LINES]
    assert [tokenize_fast(t) for t in TEXTS] == plain
    assert [tokenize_fast(t) for t in reversed(TEXTS)] == plain[::-1]  # every chunk now cached
    assert tokenize_corpus(TEXTS, n_workers=1).to_lists() == plain


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=30).map("".join) | st.text(max_size=40))
def test_tokenize_fast_equals_the_plain_pipeline(text):
    assert tokenize_fast(text) == tokenize(text)


def _tricky_strings(n, seed=0):
    rng = random.Random(seed)
    alphabet = list("aAbsStTxUC09 .,!?;:'\"`’‘“”()[]{}<>-–—~/\\*+^=%$£€#@&_|…°²") + [
        "……", "...", "'s", "’S", "km", "US$", "C$", "m/s", "°C", "😀", "✓", "中", "д", "\n", "  ", "\xa0", ":)"]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(n)]


def test_run_cache_is_bounded_and_transparent():
    texts = _tricky_strings(2000, seed=1)
    plain = WordTokenizer()
    small = CachedWordTokenizer(max_cache_size=10)
    assert [small(t) for t in texts] == [plain(t) for t in texts]
    assert len(small._cache) <= len(small.rules) + 10
    runs = CachedWordTokenizer(max_cache_size=10)  # one run at a time (ChunkTokenizer's way): the same bound
    assert [runs.run_tokens(w)[0] for t in texts for w in t.split()] == [plain.tokenize_run(w) for t in texts
                                                                          for w in t.split()]
    assert len(runs._cache) <= len(runs.rules) + 10


def test_word_and_one_mark_shortcut_equals_the_affix_loop():
    """"movie," and "(the" skip the affix loop; every word + mark (and mark + word) gives the loop's tokens,
    special cases among the words ("etc", "ca", "u.s") and marks that are no affix ("é", "_") included."""
    plain, cached = WordTokenizer(), CachedWordTokenizer()
    words = ["movie", "a", "i", "etc", "ca", "wo", "dont", "u", "s", "km", "xxmaj", "e", "g", "mr", "st", "zzz"]
    marks = sorted({c for c in "".join(PREFIXES + SUFFIXES) if not c.isalnum() and not c.isspace()} | set("é_%'\"."))
    shapes = [w + m for w in words for m in marks] + [m + w for w in words for m in marks]
    shortcut = 0
    for s in shapes:
        want = plain.tokenize_run(s)
        assert cached.tokenize_run(s) == want, s
        shortcut += s not in plain.rules and want in ([s[:-1], s[-1]], [s[0], s[1:]])
    assert shortcut > len(shapes) // 3  # the shortcut's shapes are really there
