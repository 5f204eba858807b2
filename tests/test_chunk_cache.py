"""ChunkTokenizer (tokenizers/chunk_cache.py): the memoised pipeline equals tokenize() token for token."""
import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from tokenizers.chunk_cache import ChunkTokenizer
from tokenizers.corpus import tokenize

TEXTS = [json.loads(line)["text"] for line in (FIXTURES / "tokenize.jsonl").open(encoding="utf-8")]

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
