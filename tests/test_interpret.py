"""Intrinsic attention (awdlstm/interpret.py) against fastai's algorithm on fastai's modules
(tests/fixtures/intrinsic_attention.json), its properties, the HTML page and scripts/interpret.py."""
import json
from pathlib import Path

import pytest
import torch

from awdlstm import TextClassifier, clas_config, save_model
from awdlstm.data import LabelVocab
from awdlstm.interpret import (
    Interpretation,
    attention_html,
    first_kept_position,
    intrinsic_attention,
    write_attention_html,
)
from awdlstm.pretrained import from_fastai_state_dict
from awdlstm.tokenizers.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clas_fx(fixtures_dir):
    return torch.load(fixtures_dir / "classifier.pt", weights_only=True)


@pytest.fixture(scope="module")
def golden(fixtures_dir):
    return json.loads((fixtures_dir / "intrinsic_attention.json").read_text())


def fx_model(fx, max_len="fixture") -> TextClassifier:
    c, e = fx["config"], fx["config"]["encoder_config"]
    cfg = clas_config(emb_sz=e["emb_sz"], n_hid=e["n_hid"], n_layers=e["n_layers"])
    m = TextClassifier(c["vocab_sz"], c["n_class"], cfg, lin_ftrs=c["lin_ftrs"], bptt=c["seq_len"],
                       max_len=c["max_len"] if max_len == "fixture" else max_len)
    return from_fastai_state_dict(m, {**fx["state_dict"], **fx["bn_randomized"]["overrides"]})


def test_equals_fastai_intrinsic_attention(clas_fx, golden):
    m = fx_model(clas_fx, max_len=None)  # fastai 1 pooled over the whole document
    for case in golden["cases"]:
        probs, attn = intrinsic_attention(m, case["ids"])
        torch.testing.assert_close(probs, torch.tensor(case["probs"]), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(attn, torch.tensor(case["attention"]), atol=1e-5, rtol=1e-4)
        assert int(probs.argmax()) == case["pred"]
        for k, want in enumerate(case["attention_per_class"]):
            torch.testing.assert_close(intrinsic_attention(m, case["ids"], class_id=k)[1], torch.tensor(want),
                                       atol=1e-5, rtol=1e-4)


def test_probs_are_the_models_prediction_and_state_is_restored(clas_fx):
    m = fx_model(clas_fx).train()  # max_len 12, bptt 4: the 19- and 13-token documents are pooled over a part
    m.encoder.module.hidden = None
    for doc in clas_fx["docs"]:
        probs, attn = intrinsic_attention(m, doc)
        assert m.training and m.encoder.module.hidden is None
        m.eval()
        with torch.no_grad():
            want = m(torch.tensor(doc)[None])[0].softmax(-1)[0]
        m.train()
        torch.testing.assert_close(probs, want, atol=1e-6, rtol=1e-5)
        assert attn.shape == (len(doc),) and attn.max() == 1.0 and attn.min() >= 0
    assert all(p.grad is None for p in m.parameters())


def test_attention_is_the_normalised_gradient():
    """Against a double-precision finite difference of the probability along each word's embedding."""
    torch.manual_seed(0)
    m = TextClassifier(30, 2, clas_config(emb_sz=6, n_hid=8, n_layers=2), lin_ftrs=[5], bptt=3, max_len=9).double()
    ids = torch.tensor([2, 5, 7, 9, 11, 13, 17])
    probs, attn = intrinsic_attention(m, ids, class_id=1)
    m.eval()
    emb0 = m.encoder.module.encoder(ids[None]).detach()

    def p1(emb):
        m.reset()
        out = m.encoder.module(emb, from_embeds=True)  # (1, 7, 6)
        return m.head((out, torch.zeros(1, 7, dtype=torch.bool)))[0].softmax(-1)[0, 1]

    with torch.no_grad():
        assert torch.allclose(p1(emb0).float(), probs[1])
        grad = torch.zeros(7, 6, dtype=torch.double)
        for t in range(7):
            for e in range(6):
                d = torch.zeros_like(emb0)
                d[0, t, e] = 1e-6
                grad[t, e] = (p1(emb0 + d) - p1(emb0 - d)) / 2e-6
    want = grad.abs().sum(-1)
    torch.testing.assert_close(attn, (want / want.max()).float(), atol=1e-5, rtol=1e-4)


def test_backwards_and_bad_input(clas_fx):
    m = fx_model(clas_fx)
    doc = clas_fx["docs"][1]
    probs, attn = intrinsic_attention(m, doc, backwards=True)
    rprobs, rattn = intrinsic_attention(m, doc[::-1])
    torch.testing.assert_close(probs, rprobs)
    torch.testing.assert_close(attn, rattn.flip(0))
    with pytest.raises(ValueError, match="class_id 3"):
        intrinsic_attention(m, doc, class_id=3)
    with pytest.raises(ValueError, match="one non-empty document"):
        intrinsic_attention(m, [])
    with pytest.raises(ValueError, match="one non-empty document"):
        intrinsic_attention(m, torch.tensor([doc]))
    assert [first_kept_position(n, 4, 12) for n in (3, 12, 13, 19)] == [0, 0, 4, 8]
    assert first_kept_position(19, 4, None) == 0


def test_html_page(tmp_path):
    items = [Interpretation("<b>Great</b> & fun", ["xxbos", "<b>", "great", "&"], [0.5, 0.0, 1.0, 0.25],
                            {"neg": 0.2, "pos": 0.8})]
    page = attention_html(items, title="t<1>")
    assert page.startswith("<!DOCTYPE html>") and "<title>t&lt;1&gt;</title>" in page
    assert '<span title="1.000" style="background-color: rgba(230, 97, 1, 1.000)">great</span>' in page
    assert ">&lt;b&gt;</span>" in page and ">&amp;</span>" in page and "<b>" not in page
    assert page.count("<span title=") == 4 and "1. pos" in page and "p(pos) = 0.8000" in page
    write_attention_html(tmp_path / "a" / "out.html", items)
    assert (tmp_path / "a" / "out.html").read_text(encoding="utf-8") == attention_html(items)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["out.html"]  # no temp file left
    with pytest.raises(ValueError, match="3 tokens but 2"):
        Interpretation("x", ["a", "b", "c"], [0.1, 0.2], {"a": 1.0})


def test_interpret_script(tmp_path, monkeypatch, capsys):
    """scripts/interpret.py on a saved (untrained) tiny classifier run folder."""
    run = tmp_path / "clas-tiny"
    vocab = Vocab(["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj",
                   "a", "film", "wonderful", ".", "bad", "the"])
    torch.manual_seed(0)
    save_model(TextClassifier(len(vocab), 2, clas_config(emb_sz=8, n_hid=10, n_layers=2), lin_ftrs=[4], bptt=4),
               run / "classifier.pt", vocab)
    LabelVocab(["negative", "positive"]).save(run / "labels.json")
    (run / "config.json").write_text(json.dumps({"backwards": False, "recipe": {"max_tokens": 6}}))
    from run_scripts import script

    from awdlstm.predict import load_classifier, predict

    main = script("interpret").main

    texts = ["A wonderful film <3. Wonderful, wonderful.", "The bad film."]
    main([*texts, "--model", str(run), "--threads", "1", "--quiet"])
    out = capsys.readouterr().out
    clf = load_classifier(run)
    model, v, labels = clf.model, clf.vocab, clf.labels
    for line, p in zip(out.splitlines()[:2], predict(model, v, texts, max_tokens=6), strict=True):  # predict.py agrees
        label, prob = line.split("\t")[:2]
        assert label == labels.itos[int(p.argmax())] and float(prob) == pytest.approx(p.max().item(), abs=1e-4)
    page = (run / "interpretation.html").read_text(encoding="utf-8")
    assert f"wrote {run / 'interpretation.html'} (2 texts" in out and len(out.splitlines()) == 3
    assert page.count('<div class="doc">') == 2
    assert page.count("<span title=") == 6 + 6  # the first text cut to its first 6 tokens, as in training
    assert ">&lt;3</span>" in page and page.count(">wonderful</span>") == 1 and ">xxmaj</span>" in page
    assert "p(positive)" in page
    with pytest.raises(FileNotFoundError, match="nope"):
        main(["x", "--model", str(tmp_path / "nope"), "--quiet"])
