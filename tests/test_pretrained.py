"""Weights on disk: fastai-format files (written here, tiny), match_embeds, the safe itos reader, our checkpoints."""
import json
import pickle

import pytest
import torch

from awdlstm.checkpoint import load_encoder, load_model, save_encoder, save_model
from awdlstm.classifier import TextClassifier
from awdlstm.model import LanguageModel, clas_config, lm_config
from awdlstm.pretrained import from_fastai_state_dict, load_fastai_lm, match_embeds, read_itos_pickle

OLD_ITOS = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"] + [
    f"w{i}" for i in range(31)]  # 40 tokens, the fixture's vocab size


@pytest.fixture(scope="module")
def lm_fx(fixtures_dir):
    return torch.load(fixtures_dir / "awd_lstm_lm.pt", weights_only=True)


@pytest.fixture
def fastai_files(tmp_path, lm_fx):
    """A tiny `lstm_fwd.pth` + `itos_wt103.pkl` pair in fastai's format (the fixture's weights)."""
    wpath, ipath = tmp_path / "lstm_fwd.pth", tmp_path / "itos_wt103.pkl"
    torch.save(lm_fx["state_dict"], wpath)
    ipath.write_bytes(pickle.dumps(OLD_ITOS))
    return wpath, ipath


def test_load_fastai_lm_equals_fastai_logits(fastai_files, lm_fx):
    model, itos, coverage = load_fastai_lm(*fastai_files)
    assert itos == OLD_ITOS and coverage == 1.0
    assert (model.cfg.emb_sz, model.cfg.n_hid, model.cfg.n_layers) == (16, 24, 3)
    model.eval()
    with torch.no_grad():
        assert (model(lm_fx["input_1"])[0] - lm_fx["logits_1"]).abs().max() <= 1e-5


def test_older_files_with_dropped_copy_and_optimizer(tmp_path, lm_fx):
    sd = dict(lm_fx["state_dict"])
    for i in range(3):  # older fastai files keep the last dropped weight beside the raw one
        sd[f"0.rnns.{i}.module.weight_hh_l0"] = torch.zeros_like(sd[f"0.rnns.{i}.weight_hh_l0_raw"])
    del sd["0.encoder_dp.emb.weight"]
    torch.save({"model": sd, "opt": {"state": {}}}, tmp_path / "w.pth")
    (tmp_path / "itos.pkl").write_bytes(pickle.dumps(OLD_ITOS, protocol=2))
    model = load_fastai_lm(tmp_path / "w.pth", tmp_path / "itos.pkl").model.eval()
    with torch.no_grad():
        assert (model(lm_fx["input_1"])[0] - lm_fx["logits_1"]).abs().max() <= 1e-5


def test_new_vocab_rows_matched_like_fastai(fastai_files, lm_fx):
    new = ["xxunk", "xxpad", "w3", "brand-new", "w30", "xxmaj", "unseen"]
    model, itos, coverage = load_fastai_lm(*fastai_files, vocab=new)
    assert itos == new and coverage == pytest.approx(5 / 7)
    emb, bias = lm_fx["state_dict"]["0.encoder.weight"], lm_fx["state_dict"]["1.decoder.bias"]
    got = model.encoder.encoder.weight
    for i, w in enumerate(new):
        want = emb[OLD_ITOS.index(w)] if w in OLD_ITOS else emb.mean(0)
        assert torch.allclose(got[i], want), w
        want_b = bias[OLD_ITOS.index(w)] if w in OLD_ITOS else bias.mean(0)
        assert torch.allclose(model.decoder.decoder.bias[i], want_b), w
    assert model.decoder.decoder.weight is got  # still tied

    class V:  # a Vocab-like object
        itos = new
    assert load_fastai_lm(*fastai_files, vocab=V()).coverage == pytest.approx(5 / 7)


def test_match_embeds_duplicates_take_last_index():
    emb = torch.arange(8.0).view(4, 2)
    new_emb, new_bias, n = match_embeds(emb, torch.arange(4.0), ["a", "x", "b", "x"], ["x", "zz"])
    assert n == 1 and torch.equal(new_emb[0], emb[3]) and torch.equal(new_emb[1], emb.mean(0))
    assert new_bias.tolist() == [3.0, 1.5]


def test_mismatches_are_clear_errors(fastai_files, tmp_path, lm_fx):
    wpath, ipath = fastai_files
    with pytest.raises(ValueError, match="n_hid=32"):
        load_fastai_lm(wpath, ipath, cfg=lm_config(emb_sz=16, n_hid=32, n_layers=3))
    (tmp_path / "short.pkl").write_bytes(pickle.dumps(OLD_ITOS[:30]))
    with pytest.raises(ValueError, match="30 tokens but the embedding has 40 rows"):
        load_fastai_lm(wpath, tmp_path / "short.pkl")
    sd = {**lm_fx["state_dict"], "0.rnns.0.extra": torch.zeros(1)}
    m = LanguageModel(40, lm_config(emb_sz=16, n_hid=24))
    with pytest.raises(ValueError, match=r"unexpected: encoder\.rnns\.0\.extra"):
        from_fastai_state_dict(m, sd)
    sd = {k: v for k, v in lm_fx["state_dict"].items() if k != "0.rnns.1.module.bias_hh_l0"}
    with pytest.raises(ValueError, match=r"missing: encoder\.rnns\.1\.module\.bias_hh_l0"):
        from_fastai_state_dict(m, sd)
    with pytest.raises(ValueError, match="shape mismatch"):
        from_fastai_state_dict(LanguageModel(40, lm_config(emb_sz=16, n_hid=20)), lm_fx["state_dict"])
    torch.save({"model": lm_fx["state_dict"], "fn": _Evil}, tmp_path / "objects.pth")  # a pickled class
    with pytest.raises(ValueError, match="refused, it holds more than tensors"):
        load_fastai_lm(tmp_path / "objects.pth", ipath)
    with pytest.raises(ValueError, match="unexpected fastai key"):
        from_fastai_state_dict(m, {"2.foo": torch.zeros(1)})


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_malicious_itos_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned.txt"
    payload = pickle.dumps(["xxunk", _Evil(marker)])
    pickle.loads(payload)  # the plain unpickler would run it...
    assert marker.exists()
    marker.unlink()
    (tmp_path / "evil.pkl").write_bytes(payload)
    with pytest.raises(ValueError, match="refusing to load builtins.exec"):
        read_itos_pickle(tmp_path / "evil.pkl")
    assert not marker.exists()  # ...ours refuses before anything runs
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="list of strings"):
        read_itos_pickle(tmp_path / "dict.pkl")


def test_save_load_model_roundtrip_and_format(tmp_path):
    torch.manual_seed(0)
    lm = LanguageModel(12, lm_config(emb_sz=6, n_hid=8, n_layers=2, drop_mult=0.5)).eval()
    itos = [f"t{i}" for i in range(12)]
    save_model(lm, tmp_path / "lm.pt", vocab=itos)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm.json", "lm.pt"]  # no temp files left behind
    raw = torch.load(tmp_path / "lm.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in raw.values())
    meta = json.loads((tmp_path / "lm.json").read_text())
    assert meta["kind"] == "language_model" and meta["vocab"] == itos and meta["config"]["drop_mult"] == 0.5
    loaded, vocab = load_model(tmp_path / "lm.pt")
    assert vocab == itos and loaded.cfg == lm.cfg
    x = torch.randint(0, 12, (2, 5))
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x)[0], lm(x)[0])
    assert loaded.decoder.decoder.weight is loaded.encoder.encoder.weight
    # the same call that reads fastai's files reads ours
    again = load_fastai_lm(tmp_path / "lm.pt")
    assert again.itos == itos and again.model.cfg.drop_mult == 0.5
    lm.reset()  # lm kept its hidden state from the call above
    with torch.no_grad():
        assert torch.equal(again.model.eval()(x)[0], lm(x)[0])

    clas = TextClassifier(12, 3, clas_config(emb_sz=6, n_hid=8, n_layers=2), lin_ftrs=[4], bptt=3, max_len=9).eval()
    save_model(clas, tmp_path / "clas.pt", vocab=itos)
    c2 = load_model(tmp_path / "clas.pt").model.eval()
    xc = torch.randint(2, 12, (2, 7))
    with torch.no_grad():
        assert torch.equal(c2(xc)[0], clas(xc)[0])


def test_encoder_carried_from_language_model_to_classifier(tmp_path):
    torch.manual_seed(0)
    lm = LanguageModel(12, lm_config(emb_sz=6, n_hid=8, n_layers=2))
    itos = [f"t{i}" for i in range(12)]
    save_encoder(lm, tmp_path / "enc.pt", vocab=itos)
    assert json.loads((tmp_path / "enc.json").read_text())["kind"] == "encoder"
    clas = TextClassifier(12, 2, clas_config(emb_sz=6, n_hid=8, n_layers=2), lin_ftrs=[4])
    load_encoder(clas, tmp_path / "enc.pt", vocab=itos)
    ours, theirs = clas.encoder.module.state_dict(), lm.encoder.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert clas.encoder.module.input_dp.p == 0.4  # the classifier keeps its own dropouts
    with pytest.raises(ValueError, match="another vocab"):
        load_encoder(clas, tmp_path / "enc.pt", vocab=itos[::-1])
    with pytest.raises(ValueError, match="n_hid=8 but the model has 10"):
        load_encoder(TextClassifier(12, 2, clas_config(emb_sz=6, n_hid=10, n_layers=2)), tmp_path / "enc.pt")
    save_model(lm, tmp_path / "lm.pt")  # a whole language model checkpoint also gives its encoder
    clas2 = TextClassifier(12, 2, clas_config(emb_sz=6, n_hid=8, n_layers=2), lin_ftrs=[4])
    load_encoder(clas2, tmp_path / "lm.pt")
    assert torch.equal(clas2.encoder.module.encoder.weight, lm.encoder.encoder.weight)
    with pytest.raises(ValueError, match="holds a saved encoder, not a language model"):
        load_fastai_lm(tmp_path / "enc.pt")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_encoder(clas2, tmp_path / "nothing.pt")
