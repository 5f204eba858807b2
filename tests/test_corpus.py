"""tokenize / tokenize_all / the compact tokenized-corpus cache (tokenizers/corpus.py)."""
import json
from collections import Counter

import numpy as np
import pytest

from awdlstm.tokenizers.corpus import (
    TokenizedCorpus,
    numericalize_all,
    select_docs,
    tokenize,
    tokenize_all,
    tokenize_corpus,
)
from awdlstm.tokenizers.rules import DEFAULT_RULES
from awdlstm.tokenizers.vocab import Vocab
from conftest import FIXTURES

LINES = [json.loads(line) for line in (FIXTURES / "tokenize.jsonl").open(encoding="utf-8")]
TEXTS = [d["text"] for d in LINES]


def test_tokenize_book_example():
    assert tokenize("The U.S. dollar $1 is $1.00.") == [
        "xxbos", "xxmaj", "the", "xxup", "u.s", ".", "dollar", "$", "1", "is", "$", "1.00", "."]


def test_tokenize_all_keeps_order_and_equals_fastai_with_two_workers():
    # Small chunks force several worker tasks whose results must come back in input order.
    assert tokenize_all(TEXTS, n_workers=2, chunk_size=16) == [d["tokens"] for d in LINES]


def test_workers_never_fork_a_multithreaded_process():
    """The workers start from a fork server (or are spawned), never forked from the caller, which may hold
    threads (torch's): tokenizing on 2 workers while another thread runs raises no DeprecationWarning (Python
    3.12+ warns when fork() copies a multi-threaded process) and gives the plain pipeline's tokens."""
    import threading
    import warnings

    from awdlstm.tokenizers.corpus import worker_context
    assert worker_context().get_start_method() in ("forkserver", "spawn")
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()  # this process is now multi-threaded, as it is once torch has run
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = tokenize_corpus(TEXTS[:40], n_workers=2, chunk_size=10, rules=None).to_lists()
            custom = tokenize_corpus(TEXTS[:40], n_workers=2, chunk_size=10, rules=list(DEFAULT_RULES)).to_lists()
    finally:
        stop.set()
        thread.join()
    assert [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)] == []
    assert got == custom == [tokenize(t) for t in TEXTS[:40]]


def test_one_worker_equals_many():
    one = tokenize_corpus(TEXTS, n_workers=1, chunk_size=50)
    two = tokenize_corpus(TEXTS, n_workers=2, chunk_size=7)
    assert one.types == two.types
    np.testing.assert_array_equal(one.ids, two.ids)
    np.testing.assert_array_equal(one.offsets, two.offsets)


def test_counts_are_fastais_counter_in_first_seen_order():
    docs = [d["tokens"] for d in LINES]
    expected = Counter()
    for doc in docs:
        expected.update(doc)
    counts = tokenize_corpus(TEXTS, n_workers=1).counts()
    assert list(counts.items()) == list(expected.items())  # same counts, same insertion order
    assert Vocab.from_counts(counts, 1).itos == Vocab.build(docs, 1).itos


def test_numericalize_matches_vocab_encode():
    docs = [d["tokens"] for d in LINES]
    vocab = Vocab.build(docs[:100], min_freq=2)
    ids, offsets = tokenize_corpus(TEXTS, n_workers=1).numericalize(vocab)
    ids2, offsets2 = numericalize_all(docs, vocab)
    assert ids.dtype == np.int32 and offsets.dtype == np.int64 and len(offsets) == len(docs) + 1
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_array_equal(offsets, offsets2)
    for i in (0, 57, len(docs) - 1):
        assert ids[offsets[i]:offsets[i + 1]].tolist() == vocab.encode(docs[i])


def test_cache_is_reused_and_keyed_by_content(tmp_path):
    texts = ["Hello world!", "A \ud800 lone surrogate", "", "\u00e9t\u00e9 \U0001f525\U0001f525\U0001f525"]
    first = tokenize_corpus(texts, n_workers=1, cache_dir=tmp_path)
    files = list(tmp_path.glob("tokens-*.npz"))
    assert len(files) == 1
    again = tokenize_corpus(texts, n_workers=1, cache_dir=tmp_path)
    assert again.to_lists() == first.to_lists() == [tokenize(t) for t in texts]
    tokenize_corpus(texts[:-1] + ["changed"], n_workers=1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("tokens-*.npz"))) == 2
    files[0].write_bytes(b"damaged")  # a broken cache entry is rebuilt, not trusted
    assert tokenize_corpus(texts, n_workers=1, cache_dir=tmp_path).to_lists() == first.to_lists()


def test_save_load_round_trip(tmp_path):
    corpus = tokenize_corpus(TEXTS[:50] + ["\ud83d alone"], n_workers=1)
    corpus.save(tmp_path / "c.npz")
    back = TokenizedCorpus.load(tmp_path / "c.npz")
    assert back.types == corpus.types and back.to_lists() == corpus.to_lists()
    assert len(back) == 51 and back[3] == corpus.to_lists()[3]


def test_non_str_input_names_the_document():
    with pytest.raises(TypeError, match="text 1 is a bytes"):
        tokenize_all(["fine", b"bytes"])


def test_a_space_token_and_a_typed_block_char_become_one_type():
    # replace_space turns a space token ' ' into '\u2581', the same string as a '\u2581' token typed in a text.
    def tok(text):
        return text.split("|")

    corpus = tokenize_corpus(["x| |\u2581|y| "], n_workers=1, tok=tok, rules=[])
    assert corpus.types == ["x", "\u2581", "y"]
    assert corpus.to_lists() == [["x", "\u2581", "\u2581", "y", "\u2581"]]
    assert corpus.counts()["\u2581"] == 3


@pytest.mark.parametrize("max_tokens, want", [(2, [[0, 1], [7, 8]]), (-2, [[2, 3], [8, 9]]), (-5, [[0, 1, 2, 3], [7, 8, 9]]),
                                              (0, [[0, 1, 2, 3], [7, 8, 9]])])
def test_select_docs_cuts_the_first_or_the_last_tokens(max_tokens, want):
    ids, offsets = np.array([0, 1, 2, 3, 5, 7, 8, 9], dtype=np.int32), np.array([0, 4, 5, 8])
    got_ids, got_off = select_docs(ids, offsets, np.array([0, 2]), max_tokens)
    assert [got_ids[a:b].tolist() for a, b in zip(got_off[:-1], got_off[1:])] == want
    corpus = TokenizedCorpus([f"t{i}" for i in range(10)], ids, offsets)
    assert corpus.subset([2, 0], -3).to_lists() == [["t7", "t8", "t9"], ["t1", "t2", "t3"]]
