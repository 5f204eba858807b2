"""Property-based tests (hypothesis) of what the other test files' properties do not reach: the corpus path from
a CSV file to numericalized documents and back (any text survives the CSV reader; tokenizing many documents at
once, in any chunking, equals tokenizing each alone; the token cache and document selection lose nothing),
and the label vocabulary."""
import csv
import io
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from awdlstm import (
    LanguageModel,
    TextClassifier,
    clas_config,
    lm_config,
    load_encoder,
    load_model,
    save_encoder,
    save_model,
)
from awdlstm.data import ClasLoader, FastLMLoader, LabelVocab, LMLoader, read_csv
from awdlstm.data.sources import csv_rows
from awdlstm.data.stream_sources import iter_csv
from awdlstm.predict import predict_ids
from awdlstm.tokenizers import DEFAULT_RULES, SPECIAL_TOKENS, CharTokenizer, SubwordTokenizer, apply_rules
from awdlstm.tokenizers.corpus import TokenizedCorpus, select_docs, tokenize, tokenize_corpus
from awdlstm.tokenizers.vocab import Vocab

TRICKY = list("ab Z,.\"'\n\r\t!?-:;()<>/\\*#@&$") + ["xxbos", "xxmaj", "<br />", "&amp;", "   ", "AAAA", "!!!!",
                                                     "é", "ß", "日本", "😀", "\u00a0", "\u2581", "don't", "U.S."]
texts = st.lists(st.lists(st.sampled_from(TRICKY), max_size=25).map("".join) | st.text(max_size=30), max_size=8)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _csv_record(fields: list[str]) -> str:
    """One CSV record with every field quoted (RFC 4180), whatever it holds; written here, not by the csv module,
    whose writer on Python 3.10 cannot write a NUL character."""
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields) + "\r\n"


@SETTINGS
@given(docs=texts, labels=st.lists(st.sampled_from(["pos", "neg", "a,b", 'say "x"', " x\n", "n\x00l"]), min_size=8,
                                   max_size=8))
def test_any_text_survives_the_csv_reader(tmp_path, docs, labels):
    """Any text, NUL and line breaks included, comes back from read_csv as it was written, on every Python (3.10's
    csv module refuses a NUL: csv_rows escapes it there, and that path is checked here on every version); labels
    come back without surrounding whitespace (data/labels.py)."""
    rows = [["text", "label"], *map(list, zip(docs, labels, strict=False))]
    data = "".join(map(_csv_record, rows))
    path = tmp_path / "d.csv"
    path.write_bytes(data.encode("utf-8"))
    got = read_csv(path)
    assert got.texts == docs and got.labels == [o.strip() for o in labels[: len(docs)]]
    assert list(csv_rows(io.StringIO(data, newline=""), escape_nul=True)) == rows


def test_nul_in_a_csv_reads_the_same_on_every_python(tmp_path):
    """A NUL character (byte 0) in a CSV field is kept, as any other character, by every reader of CSV files:
    Python 3.11's csv module keeps it, 3.10's refuses the line; csv_rows makes 3.10 read what 3.11 reads."""
    path = tmp_path / "nul.csv"
    path.write_bytes(b'text,label\n"a\x00b\x01\x01c\x010",p\x00s\n"two\n\x00lines",neg\nx\x00,"q""\x00"\n')
    want_texts, want_labels = ["a\x00b\x01\x01c\x010", "two\n\x00lines", "x\x00"], ["p\x00s", "neg", 'q"\x00']
    got = read_csv(path)
    assert got.texts == want_texts and got.labels == want_labels
    assert [t for t, _ in iter_csv(path)] == want_texts  # the streaming reader (data/stream_sources.py)
    for escape in ([True, False] if sys.version_info >= (3, 11) else [True]):
        with open(path, encoding="utf-8", newline="") as f:
            rows = csv_rows(f, header=True, escape_nul=escape)
            assert [(r["text"], r["label"]) for r in rows] == list(zip(want_texts, want_labels))
            assert rows.line_num == 5  # the quoted line break counted
    if sys.version_info < (3, 11):  # what csv_rows saves 3.10 from
        with open(path, encoding="utf-8", newline="") as f, pytest.raises(csv.Error, match="NUL"):
            list(csv.reader(f))


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


# ------------------------------------------------------------------ issue #33: the rest of the pipeline, property-tested
# Fixed examples: derandomize=True seeds hypothesis from each test's name (the same examples on every run and every
# machine, no example database), and max_examples keeps the whole set to a few seconds on one core.
ANY = st.characters(exclude_categories=())  # any code point: lone surrogates too (a Python str may hold them)
any_text = st.text(ANY, max_size=40) | st.lists(st.sampled_from(TRICKY), max_size=25).map("".join)


def fixed(n: int) -> settings:
    return settings(max_examples=n, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@fixed(120)
@given(docs=st.lists(any_text, max_size=6), chunk_size=st.integers(1, 3))
def test_any_unicode_text_tokenizes_and_the_fast_path_equals_the_plain_one(docs, chunk_size):
    """`tokenize` (the plain pipeline: rules, word tokenizer, replace_space) never raises on any str, starts every
    document with xxbos; `tokenize_corpus` gives the same tokens through fast.py's ChunkTokenizer (the default
    pipeline) and through its rules cache and cached word tokenizer (rules given explicitly)."""
    plain = [tokenize(d) for d in docs]
    assert all(t[0] == "xxbos" and all(isinstance(w, str) and w and " " not in w for w in t) for t in plain)
    assert tokenize_corpus(docs, n_workers=1, chunk_size=chunk_size).to_lists() == plain
    assert tokenize_corpus(docs, n_workers=1, chunk_size=chunk_size, rules=list(DEFAULT_RULES)).to_lists() == plain


@fixed(40)
@given(train=st.lists(any_text, min_size=1, max_size=4), other=any_text, extra=st.integers(0, 30))
def test_subword_tokenizer_decodes_what_it_encodes(train, other, extra):
    """A SubwordTokenizer trained on any texts: `decode(encode(t)) == t` exactly, with no normalisation, for the
    texts it was trained on and for any other text (characters it never saw go through byte pieces); every piece
    is in its vocab (`pieces`) or a fallback (`reserved`). In the pipeline, `decode(tokenize(t, tok=sub))` is the
    text after the rules' normalisation, `apply_rules(t)`: the pieces carry no space, so replace_space keeps them."""
    vocab_size = len(SPECIAL_TOKENS) + len(set("".join(train))) + 1 + extra  # room for every character and ▁
    sub = SubwordTokenizer.train(train, vocab_size, progress=False)
    known = set(sub.pieces) | set(sub.reserved)
    for t in [*train, other]:
        pieces = sub.encode(t)
        assert sub.decode(pieces) == t
        assert set(pieces) <= known
        assert sub.decode(tokenize(t, tok=sub)) == apply_rules(t)


@fixed(150)
@given(text=any_text | st.lists(st.sampled_from([*SPECIAL_TOKENS, "x", " ", "xx"]), max_size=8).map("".join))
def test_char_tokenizer_decodes_what_it_encodes(text):
    """A CharTokenizer: `decode(encode(t)) == t` exactly for every str (the special tokens stay whole), and every
    token is in the vocab of a tokenizer trained on t. In the pipeline, replace_space writes the space token '▁',
    so `decode(tokenize(t, tok=char))` is `apply_rules(t)` with every space written '▁'."""
    char = CharTokenizer.train([text])
    tokens = char.encode(text)
    assert char.decode(tokens) == text
    assert set(tokens) <= set(char.pieces)
    assert char.decode(tokenize(text, tok=char)) == apply_rules(text).replace(" ", "\u2581")


@fixed(60)
@given(lens=st.lists(st.integers(0, 25), min_size=1, max_size=12), rows=st.integers(1, 4),
       world_size=st.sampled_from([1, 2]), seq_len=st.integers(1, 7), backwards=st.booleans(),
       seed=st.integers(0, 2**31 - 2))
def test_lm_batcher_reads_every_token_once_per_epoch_and_targets_are_shifted_by_one(lens, rows, world_size,
                                                                                  seq_len, backwards, seed):
    """The language-model batcher, over three shuffled epochs, split across `world_size` processes: the rows of
    all processes together read the epoch's stream (the documents in `epoch_order`, each reversed if backwards)
    from its first token, every token exactly once, in order, and drop at most `bs` tokens at its end (fastai's
    `(n - 1) // bs * bs`); every target is the token after its input in that stream. Both batchers: the plain
    LMLoader and FastLMLoader (what training uses)."""
    bs = rows * world_size
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    n = int(offsets[-1])
    ids = np.arange(n, dtype=np.int64)  # a token's id is its position in the corpus: every token identifiable
    kw = dict(bs=bs, seq_len=seq_len, shuffle=True, backwards=backwards, seed=seed, world_size=world_size)
    if n - 1 < bs:
        for loader in (LMLoader, FastLMLoader):
            with pytest.raises(ValueError, match="too small"):
                loader((ids, offsets), rank=0, **kw)
        return
    for loader in (LMLoader, FastLMLoader):
        loaders = [loader((ids, offsets), rank=r, **kw) for r in range(world_size)]
        bl = loaders[0].bl
        assert n - bs * bl == 1 + (n - 1) % bs <= bs
        for _ in range(3):
            order = loaders[0].epoch_order()
            assert sorted(order.tolist()) == list(range(len(lens)))
            docs = [ids[offsets[i]:offsets[i + 1]] for i in order]
            stream = np.concatenate([d[::-1] if backwards else d for d in docs])
            x, y = np.zeros((bs, bl), dtype=np.int64), np.zeros((bs, bl), dtype=np.int64)
            for r, dl in enumerate(loaders):
                batches = list(dl)
                assert len(batches) == len(dl)
                x[r::world_size] = torch.cat([b[0] for b in batches], dim=1).numpy()
                y[r::world_size] = torch.cat([b[1] for b in batches], dim=1).numpy()
            assert x.reshape(-1).tolist() == stream[:bs * bl].tolist()
            assert y.reshape(-1).tolist() == stream[1:bs * bl + 1].tolist()


def _tiny_classifier(max_len: int | None) -> TextClassifier:
    torch.manual_seed(0)
    model = TextClassifier(30, 3, clas_config(emb_sz=6, n_hid=8, n_layers=2), lin_ftrs=[5], bptt=4, max_len=max_len)
    with torch.no_grad():  # larger weights than the init: documents get clearly different predictions
        for p in model.parameters():
            p.mul_(4.0)
    return model.eval()


CLASSIFIERS = {m: _tiny_classifier(m) for m in (12, 10, None)}  # max_len: whole chunks, not, every chunk kept


@fixed(40)
@given(lens=st.lists(st.integers(1, 30), min_size=1, max_size=8), bs=st.integers(1, 6), backwards=st.booleans(),
       max_len=st.sampled_from(list(CLASSIFIERS)), seed=st.integers(0, 1000))
def test_classifier_predictions_come_back_in_input_order_whatever_the_lengths(lens, bs, backwards, max_len, seed):
    """Predicting a batch of documents of any lengths (predict_ids: sorted by length, padded, restore_order)
    gives every document the probabilities it gets alone, in the input order, and those are training's
    computation on it alone (max_len 10 is not a whole number of chunks of 4: each row keeps its own text's
    last 10 tokens' chunks); so does a shuffled (training order) loader's epoch put back with `restore_order`."""
    model = CLASSIFIERS[max_len]
    rng = np.random.default_rng(seed)
    docs = [rng.integers(2, 30, size=k).tolist() for k in lens]  # no xxpad (1) inside a text
    alone = torch.cat([predict_ids(model, [d], bs=1, backwards=backwards) for d in docs])
    with torch.no_grad():  # training's computation (fastai's padding) on a batch of one: nothing to pad
        trained = torch.cat([model(torch.tensor([d[::-1] if backwards else d]))[0].softmax(-1) for d in docs])
    torch.testing.assert_close(alone.log(), trained.log(), rtol=1e-4, atol=1e-4)  # log: saturated probabilities
    torch.testing.assert_close(predict_ids(model, docs, bs=bs, backwards=backwards).log(), alone.log(), rtol=1e-4,
                               atol=1e-4)
    dl = ClasLoader(docs, None, bs=bs, seq_len=4, shuffle=True, drop_last=False, backwards=backwards, seed=seed,
                    whole_chunks=True)
    with torch.no_grad():
        preds = torch.cat([model(x, whole_chunks=True)[0].softmax(-1) for x, _ in dl])
    torch.testing.assert_close(dl.restore_order(preds).log(), alone.log(), rtol=1e-4, atol=1e-4)


@fixed(20)
@given(emb_sz=st.integers(1, 6), n_hid=st.integers(1, 6), n_layers=st.integers(1, 3), n_class=st.integers(2, 4),
       lin_ftrs=st.lists(st.integers(1, 5), max_size=2), words=st.lists(st.text(ANY, min_size=1, max_size=6),
                                                                      min_size=1, max_size=12, unique=True),
       bptt=st.integers(1, 5), seed=st.integers(0, 1000))
def test_saved_and_reloaded_models_give_identical_outputs(tmp_path, emb_sz, n_hid, n_layers, n_class, lin_ftrs,
                                                          words, bptt, seed):
    """save_model -> load_model gives back a language model or classifier whose outputs on the same input are
    bit-identical (the LM over two batches, its hidden state carried), and the vocab, any Unicode, unchanged;
    save_encoder -> load_encoder puts into a fresh classifier an encoder whose outputs equal the LM's."""
    itos = SPECIAL_TOKENS + [w for w in words if w not in SPECIAL_TOKENS]
    torch.manual_seed(seed)
    lm = LanguageModel(len(itos), lm_config(emb_sz=emb_sz, n_hid=n_hid, n_layers=n_layers)).eval()
    clas = TextClassifier(len(itos), n_class, clas_config(emb_sz=emb_sz, n_hid=n_hid, n_layers=n_layers),
                          lin_ftrs=lin_ftrs, bptt=bptt, max_len=None).eval()
    with torch.no_grad():
        for p in clas.head.parameters():  # BatchNorm starts at weight 1, bias 1e-3: make the head's weights matter
            p.normal_()
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randint(0, len(itos), (3, 5), generator=g) for _ in range(2)]
    for model in (lm, clas):
        save_model(model, tmp_path / "m.pt", vocab=itos)
        again, saved_itos = load_model(tmp_path / "m.pt")
        assert type(again) is type(model) and saved_itos == itos
        again.eval()
        for m in (model, again):
            m.reset()
        with torch.no_grad():
            for x in xs:
                for a, b in zip(model(x), again(x), strict=True):
                    assert torch.equal(a, b)
    save_encoder(lm, tmp_path / "enc.pt", vocab=itos)
    fresh = TextClassifier(len(itos), n_class, clas_config(emb_sz=emb_sz, n_hid=n_hid, n_layers=n_layers),
                           lin_ftrs=lin_ftrs, bptt=bptt).eval()
    load_encoder(fresh, tmp_path / "enc.pt", vocab=itos)
    lm.reset()
    fresh.reset()
    with torch.no_grad():
        for x in xs:
            assert torch.equal(fresh.encoder.module(x), lm.encoder(x))
