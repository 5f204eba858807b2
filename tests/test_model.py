"""AWDLSTM / LanguageModel / TextClassifier against fastai 2.8's own outputs (tests/fixtures/README.md §5, §6)."""
import pytest
import torch

from awdlstm.classifier import TextClassifier, masked_concat_pool
from awdlstm.model import AWDLSTM, AWDLSTMConfig, LanguageModel, clas_config, lm_config
from awdlstm.pretrained import from_fastai_state_dict, map_fastai_keys

ATOL = 1e-5
LM_PREFIX = {"0": "encoder", "1": "decoder"}
CLAS_PREFIX = {"0": "encoder", "1": "head"}


@pytest.fixture(scope="module")
def lm_fx(fixtures_dir):
    return torch.load(fixtures_dir / "awd_lstm_lm.pt", weights_only=True)


@pytest.fixture(scope="module")
def clas_fx(fixtures_dir):
    return torch.load(fixtures_dir / "classifier.pt", weights_only=True)


def small_lm(fx) -> LanguageModel:
    c = fx["config"]["get_language_model_config"]
    return LanguageModel(fx["config"]["vocab_sz"], lm_config(emb_sz=c["emb_sz"], n_hid=c["n_hid"], n_layers=c["n_layers"]))


def small_clas(fx) -> TextClassifier:
    c = fx["config"]
    e = c["encoder_config"]
    return TextClassifier(c["vocab_sz"], c["n_class"], clas_config(emb_sz=e["emb_sz"], n_hid=e["n_hid"], n_layers=e["n_layers"]),
                          lin_ftrs=c["lin_ftrs"], bptt=c["seq_len"], max_len=c["max_len"])


def close(a, b, atol=ATOL):
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = (a - b).abs().max().item()
    assert diff <= atol, diff


def test_configs_equal_fastai(lm_fx, clas_fx):
    lm = lm_fx["config"]["get_language_model_config"]
    cfg = lm_config()
    for k in ("pad_token", "output_p", "hidden_p", "input_p", "embed_p", "weight_p", "tie_weights", "out_bias"):
        assert getattr(cfg, k) == lm[k], k
    assert (cfg.emb_sz, cfg.n_hid, cfg.n_layers) == (400, 1152, 3)
    cl = clas_fx["config"]["encoder_config"]
    for k in ("output_p", "hidden_p", "input_p", "embed_p", "weight_p"):
        assert getattr(clas_config(), k) == cl[k], k
    scaled = lm_config(drop_mult=0.3).dropouts()
    assert scaled["hidden_p"] == 0.15 * 0.3 and scaled["output_p"] == 0.1 * 0.3
    with pytest.raises(ValueError, match="hidden_p"):
        AWDLSTMConfig(hidden_p=0.6, drop_mult=2.0)
    with pytest.raises(ValueError, match="unknown keys"):
        AWDLSTMConfig.from_dict({"emb_sz": 4, "bogus": 1})


def test_same_seed_gives_fastai_initial_weights(lm_fx, clas_fx):
    torch.manual_seed(lm_fx["config"]["init_seed"])
    sd = small_lm(lm_fx).state_dict()
    for k, v in map_fastai_keys(lm_fx["state_dict"], LM_PREFIX).items():
        assert torch.equal(sd[k], v), k
    torch.manual_seed(clas_fx["config"]["init_seed"])
    sd = small_clas(clas_fx).state_dict()
    for k, v in map_fastai_keys(clas_fx["state_dict"], CLAS_PREFIX).items():
        assert torch.equal(sd[k], v), k


def test_language_model_eval_equals_fastai(lm_fx):
    m = from_fastai_state_dict(small_lm(lm_fx), lm_fx["state_dict"]).eval()
    with torch.no_grad():
        out, raws, outs = m.encoder(lm_fx["input_1"], return_all=True)
        for a, b in zip(raws, lm_fx["raw_outputs_1"], strict=True):
            close(a, b)
        for a, b in zip(outs, lm_fx["outputs_1"], strict=True):
            close(a, b)
        m.reset()
        logits, raw, dropped = m(lm_fx["input_1"])
        close(logits, lm_fx["logits_1"])
        close(raw, lm_fx["raw_out_1"])
        close(dropped, lm_fx["dropped_out_1"])
        for (h, c), (fh, fc) in zip(m.encoder.hidden, lm_fx["hidden_after_1"], strict=True):
            close(h, fh)
            close(c, fc)
        close(m(lm_fx["input_2"])[0], lm_fx["logits_2"])  # hidden state carried over
        m.reset()
        close(m(lm_fx["input_2"])[0], lm_fx["logits_after_reset"])
    assert (lm_fx["logits_2"] - lm_fx["logits_after_reset"]).abs().max() > 1e-3  # the carry matters


def test_language_model_train_mode_and_ar_tar_equal_fastai(lm_fx):
    """Our dropouts draw from the RNG like fastai's, so even train-mode outputs and AR/TAR match."""
    fx = lm_fx["ar_tar"]
    m = from_fastai_state_dict(small_lm(lm_fx), lm_fx["state_dict"]).train()
    m.reset()
    torch.manual_seed(fx["seed"])
    logits, raw, out = m(lm_fx[fx["input"]])
    close(logits, fx["logits"])
    close(raw, fx["raw_out"])
    close(out, fx["out"])
    ar = fx["alpha"] * out.float().pow(2).mean()
    tar = fx["beta"] * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
    close(ar, fx["ar"], 1e-7)
    close(tar, fx["tar"], 1e-7)
    close(ar + tar, fx["total"], 1e-7)


def test_hidden_state_follows_batch_size():
    torch.manual_seed(0)
    enc = AWDLSTM(30, lm_config(emb_sz=6, n_hid=8, n_layers=2)).eval()
    x = torch.randint(2, 30, (3, 5))
    with torch.no_grad():
        enc(x)
        kept = [tuple(t.clone() for t in hc) for hc in enc.hidden]
        y = torch.randint(2, 30, (2, 4))
        small = enc(y)  # fewer rows: the state is sliced
        enc.hidden = [tuple(t[:, :2] for t in hc) for hc in kept]
        assert torch.allclose(small, enc(y))
        enc.hidden = kept
        z = torch.randint(2, 30, (5, 4))
        big = enc(z)  # more rows: the new ones start from zeros
        enc.reset()
        assert torch.allclose(big[3:], enc(z[3:]), atol=1e-6)
        assert enc.hidden[0][0].shape == (1, 2, 8) and enc.hidden[1][0].shape == (1, 2, 6)
    with pytest.raises(ValueError, match="bs, seq_len"):
        enc(torch.zeros(5, dtype=torch.long))


def test_state_is_detached_between_calls():
    torch.manual_seed(0)
    m = LanguageModel(20, lm_config(emb_sz=6, n_hid=8, n_layers=2))
    m(torch.randint(0, 20, (2, 5)))[0].sum().backward()
    assert all(not t.requires_grad for hc in m.encoder.hidden for t in hc)
    m(torch.randint(0, 20, (2, 5)))[0].sum().backward()  # a second backward through a new graph works


def test_param_groups_are_fastai_splits():
    lm = LanguageModel(20, lm_config(emb_sz=6, n_hid=8))
    groups = lm.param_groups()
    assert [len(g) for g in groups] == [4, 4, 4, 2]
    assert groups[0][0] is lm.encoder.rnns[0].module.weight_hh_l0
    assert groups[-1][0] is lm.encoder.encoder.weight is lm.decoder.decoder.weight
    assert groups[-1][1] is lm.decoder.decoder.bias
    flat = [p for g in groups for p in g]
    assert len({id(p) for p in flat}) == len(flat) == len(list(lm.parameters()))
    clas = TextClassifier(20, 3, clas_config(emb_sz=6, n_hid=8), lin_ftrs=[5])
    cg = clas.param_groups()
    assert [len(g) for g in cg] == [1, 4, 4, 4, 6]  # head: 2 x (BN weight, bias) + 2 linear weights
    flat = [p for g in cg for p in g]
    assert len({id(p) for p in flat}) == len(flat) == len(list(clas.parameters()))


def test_classifier_equals_fastai(clas_fx):
    m = from_fastai_state_dict(small_clas(clas_fx), clas_fx["state_dict"]).eval()
    calls = []
    m.encoder.module.register_forward_hook(lambda mod, inp, out: calls.append(tuple(inp[0].shape)))
    x = clas_fx["input"]
    with torch.no_grad():
        logits, out1, out2 = m(x)
        outs, mask = m.encoder(x)
    assert out1 is out2
    close(logits, clas_fx["logits"])
    close(out1, clas_fx["encoder_outputs"])
    assert torch.equal(mask, clas_fx["mask"])
    close(masked_concat_pool(outs, mask, clas_fx["config"]["seq_len"]), clas_fx["pooled"])
    assert calls[: len(clas_fx["chunks"])] == [(c["real_bs"], c["width"]) for c in clas_fx["chunks"]]
    from_fastai_state_dict(m, {**clas_fx["state_dict"], **clas_fx["bn_randomized"]["overrides"]}).eval()
    with torch.no_grad():
        close(m(x)[0], clas_fx["bn_randomized"]["logits"])


def test_classifier_batchnorm_init_and_errors():
    clas = TextClassifier(20, 2, clas_config(emb_sz=6, n_hid=8), lin_ftrs=[5], ps=[0.0])
    bn = clas.head.layers[0][0]
    assert torch.equal(bn.weight, torch.ones(18)) and torch.equal(bn.bias, torch.full((18,), 1e-3))
    assert isinstance(clas.head.layers[1][1], torch.nn.Linear)  # p == 0: no Dropout layer, as fastai
    with pytest.raises(ValueError, match="lin_ftrs"):
        TextClassifier(20, 2, lin_ftrs=[5, 6], ps=[0.1])
    with pytest.raises(ValueError, match="max_len"):
        TextClassifier(20, 2, bptt=8, max_len=4)


def test_bf16_autocast_forward_backward():
    torch.manual_seed(0)
    lm = LanguageModel(30, lm_config(emb_sz=6, n_hid=8)).train()
    x = torch.randint(0, 30, (2, 7))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, raw, out = lm(x)
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, 30), x.view(-1))
    loss.backward()
    assert logits.dtype == torch.bfloat16 and torch.isfinite(loss)
    assert lm.encoder.rnns[0].module.weight_hh_l0.grad.abs().sum() > 0
    assert lm.encoder.hidden[0][0].dtype == torch.float32  # the kept state stays in the parameters' dtype
    clas = TextClassifier(30, 2, clas_config(emb_sz=6, n_hid=8), bptt=3, max_len=6).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        clas(torch.randint(2, 30, (3, 8)))[0].float().sum().backward()
    lm.eval()
    with torch.no_grad():
        assert lm(x)[0].dtype == torch.float32  # and plain float32 afterwards


def test_classifier_skips_chunks_where_no_row_has_started(clas_fx):
    """A batch padded beyond its longest row (a whole pad chunk in front) gives the same logits."""
    m = from_fastai_state_dict(small_clas(clas_fx), clas_fx["state_dict"]).eval()
    x = clas_fx["input"]
    bptt = clas_fx["config"]["seq_len"]
    padded = torch.cat([torch.ones(x.size(0), bptt, dtype=x.dtype), x], dim=1)
    with torch.no_grad():
        close(m(padded)[0], clas_fx["logits"])


def test_config_lives_beside_the_network_and_its_examples_hold():
    """awdlstm/config.py holds the configuration (its docstring examples run); model.py re-exports it."""
    import doctest

    import awdlstm
    import awdlstm.config
    import awdlstm.model
    result = doctest.testmod(awdlstm.config)
    assert result.attempted > 0 and result.failed == 0
    for name in ("AWDLSTMConfig", "lm_config", "clas_config", "CLAS_DROPOUTS"):
        assert getattr(awdlstm.model, name) is getattr(awdlstm.config, name)
    assert awdlstm.AWDLSTMConfig is awdlstm.config.AWDLSTMConfig and awdlstm.lm_config is awdlstm.config.lm_config
