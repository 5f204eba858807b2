"""Property-based tests (hypothesis) of what the other test files' properties do not reach: the corpus path from
a CSV file to numericalized documents and back (any text survives the CSV reader; tokenizing many documents at
once, in any chunking, equals tokenizing each alone; the token cache and document selection lose nothing),
and the label vocabulary."""
import csv

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data import LabelVocab, read_csv
from tokenizers.corpus import TokenizedCorpus, select_docs, tokenize, tokenize_corpus
from tokenizers.vocab import Vocab

TRICKY = list("ab Z,.\"'\n\r\t!?-:;()<>/\\*#@&$") + ["xxbos", "xxmaj", "<br />", "&amp;", "   ", "AAAA", "!!!!",
                                                     "é", "ß", "日本", "😀", "\u00a0", "\u2581", "don't", "U.S."]
texts = st.lists(st.lists(st.sampled_from(TRICKY), max_size=25).map("".join) | st.text(max_size=30), max_size=8)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(docs=texts, labels=st.lists(st.sampled_from(["pos", "neg", "a,b", 'say "x"', " x\n"]), min_size=8, max_size=8))
def test_any_text_survives_the_csv_reader(tmp_path, docs, labels):
    path = tmp_path / "d.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(zip(docs, labels, strict=False))
    got = read_csv(path)
    assert got.texts == docs and got.labels == labels[: len(docs)]


@SETTINGS
@given(docs=texts, chunk_size=st.integers(1, 4))
def test_corpus_equals_one_document_at_a_time(tmp_path, docs, chunk_size):
    corpus = tokenize_corpus(docs, n_workers=1, chunk_size=chunk_size)
    assert corpus.to_lists() == [tokenize(d) for d in docs]
    seen = list(dict.fromkeys(t for d in docs for t in tokenize(d)))
    assert list(corpus.counts()) == seen  # types numbered in first-seen order, whatever the chunking
    corpus.save(tmp_path / "c.npz")
    again = TokenizedCorpus.load(tmp_path / "c.npz")
    assert again.to_lists() == corpus.to_lists()


@SETTINGS
@given(docs=texts, data=st.data())
def test_numericalize_and_select_lose_nothing(docs, data):
    corpus = tokenize_corpus(docs, n_workers=1)
    vocab = Vocab.from_counts(corpus.counts(), min_freq=1)
    ids, offsets = corpus.numericalize(vocab)
    idxs = data.draw(st.lists(st.integers(0, max(len(docs) - 1, 0)), max_size=len(docs))) if docs else []
    cut = data.draw(st.integers(0, 5))
    sel_ids, sel_off = select_docs(ids, offsets, np.array(idxs, dtype=np.int64), max_tokens=cut)
    assert len(sel_off) == len(idxs) + 1
    for k, i in enumerate(idxs):
        want = corpus[i][:cut] if cut else corpus[i]
        assert vocab.decode(sel_ids[sel_off[k]:sel_off[k + 1]].tolist()) == want


@given(st.lists(st.text(max_size=5), min_size=1, max_size=30))
def test_label_vocab_round_trip(labels):
    lv = LabelVocab.build(labels)
    assert lv.decode(lv.encode(labels)) == labels
    assert lv.itos == sorted(set(labels))
