"""The training loop: 1cycle hypers per batch, freezing, AR/TAR, metrics, table, history, failures."""
import json
import math
import warnings

import pytest
import torch
from tiny_models import TinyClassifier, TinyLM, clas_batches, lm_batches

from awdlstm.loss import ar_tar, flat_cross_entropy
from awdlstm.train import Learner, NonFiniteLoss, TrainConfig

FAST = dict(progress=False, seed=0, precision="fp32")
try:  # the optional `plot` extra
    import matplotlib  # noqa: F401

    HAS_MPL = True
except ImportError:
    HAS_MPL = False


def _snapshot(params):
    return [p.detach().clone() for p in params]


def test_lm_fit_one_cycle_learns_and_writes_run(tmp_path, capsys):
    torch.manual_seed(0)
    learn = Learner(TinyLM(), lm_batches(8), lm_batches(3, seed=1), tmp_path, cfg=TrainConfig(**FAST))
    before = learn.validate()["valid_loss"]
    rows = learn.fit_one_cycle(4, 3e-2)
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert rows[-1]["valid_loss"] < 0.7 * before  # it learns the rule
    assert rows[-1]["perplexity"] == pytest.approx(math.exp(rows[-1]["valid_loss"]))
    assert 0 <= rows[0]["accuracy"] < rows[-1]["accuracy"] <= 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "epoch     train_loss  valid_loss  accuracy  perplexity  time    "
    assert lines[1].startswith("0         ") and lines[1][10:20] == f"{rows[0]['train_loss']:.6f}  "
    assert (tmp_path / "history.csv").read_text().splitlines()[0].split(",")[:6] == \
        ["fit", "epoch", "train_loss", "valid_loss", "accuracy", "perplexity"]
    hist = json.loads((tmp_path / "history.json").read_text())
    assert len(hist["epochs"]) == 4 and len(hist["batches"]["loss"]) == 32
    assert (tmp_path / "last.pt").exists() and (tmp_path / "curves.png").exists() == HAS_MPL


def test_loop_hypers_equal_fastai_lm_learner(fixtures_dir):
    """The lr and mom the loop hands Adam at each batch equal fastai's LMLearner (schedule.json)."""
    case = next(c for c in json.loads((fixtures_dir / "schedule.json").read_text())["cases"]
                if c["name"] == "lm_learner_lr_1e-2")
    learn = Learner(TinyLM(), lm_batches(10), None, cfg=TrainConfig(**FAST))
    seen = []
    step = learn.opt.step

    def recording_step():
        seen.append(([h["lr"] for h in learn.opt.hypers], [h["mom"] for h in learn.opt.hypers],
                     [h["sqr_mom"] for h in learn.opt.hypers], [h["wd"] for h in learn.opt.hypers]))
        step()

    learn.opt.step = recording_step
    learn.fit_one_cycle(2, 1e-2)
    assert len(seen) == 20 and len(seen[0][0]) == 2
    for (lrs, moms, sqr, wd), want_lr, want_mom in zip(seen, case["steps"]["lr"], case["steps"]["mom"], strict=True):
        torch.testing.assert_close(lrs, want_lr[:2], rtol=2e-6, atol=0)  # fastai's 4 groups share the value
        torch.testing.assert_close(moms, want_mom[:2], rtol=2e-6, atol=0)
        assert sqr == [0.99, 0.99] and wd == [0.01, 0.01]


def test_lm_recipe_frozen_then_unfrozen():
    torch.manual_seed(0)
    model = TinyLM()
    learn = Learner(model, lm_batches(4), lm_batches(2, seed=1), cfg=TrainConfig(**FAST))
    learn.freeze()
    frozen, trained = model.param_groups()
    b_frozen, b_trained = _snapshot(frozen), _snapshot(trained)
    learn.fit_one_cycle(1, 2e-2)
    assert all(torch.equal(a, b) for a, b in zip(frozen, b_frozen, strict=True))  # no update, no decay
    assert all(not torch.equal(a, b) for a, b in zip(trained, b_trained, strict=True))
    learn.unfreeze()
    b_frozen = _snapshot(frozen)
    learn.fit_one_cycle(2, 2e-3)
    assert all(not torch.equal(a, b) for a, b in zip(frozen, b_frozen, strict=True))


def test_classifier_gradual_unfreezing_and_bn_trains():
    torch.manual_seed(0)
    model = TinyClassifier()
    learn = Learner(model, clas_batches(4), clas_batches(2, seed=1), metrics=["accuracy"],
                    cfg=TrainConfig(**FAST, moms=(0.95, 0.85, 0.95)))
    groups = model.param_groups()
    learn.freeze_to(-2)
    snap = [_snapshot(g) for g in groups]
    rows = learn.fit_one_cycle(1, slice(1e-2 / 2.6**4, 1e-2))
    assert set(rows[0]) >= {"train_loss", "valid_loss", "accuracy"} and "perplexity" not in rows[0]
    assert all(torch.equal(a, b) for a, b in zip(groups[0], snap[0], strict=True))
    assert all(not torch.equal(a, b) for g, s in zip(groups[1:], snap[1:], strict=True)
               for a, b in zip(g, s, strict=True))
    # BatchNorm sits in the last group here; in a frozen group it would still train (train_bn):
    with pytest.warns(UserWarning, match="whole model is frozen"):
        learn.freeze_to(3)  # everything frozen ...
    assert model.head[0].weight.requires_grad and not model.head[2].weight.requires_grad  # ... but the norm
    lrs = [h["lr"] for h in learn.opt.hypers]  # slice(lr/2.6**4, lr) over 3 groups: factor 2.6**2 apart
    assert lrs[1] / lrs[0] == pytest.approx(2.6**2) and lrs[2] / lrs[1] == pytest.approx(2.6**2)


def test_ar_tar_equals_fastai_fixture(fixtures_dir):
    ref = torch.load(fixtures_dir / "awd_lstm_lm.pt", weights_only=True)["ar_tar"]
    got = ar_tar(ref["raw_out"], ref["out"], 2.0, 1.0)
    torch.testing.assert_close(got, ref["total"], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ar_tar(ref["raw_out"], ref["out"], 2.0, 0.0), ref["ar"], rtol=1e-6, atol=1e-7)
    one = ref["raw_out"][:1]  # batch of one: TAR skipped (fastai checks len(raw_out) > 1)
    torch.testing.assert_close(ar_tar(one, one, 0.0, 1.0), torch.tensor(0.0))


def test_flat_cross_entropy_is_fp32_and_flattened():
    logits = torch.randn(2, 3, 5, dtype=torch.bfloat16)
    y = torch.randint(0, 5, (2, 3))
    loss = flat_cross_entropy(logits, y)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits.float().view(6, 5), y.view(6)))


def test_non_finite_loss_skips_then_stops(tmp_path):
    torch.manual_seed(0)
    model = TinyLM()
    learn = Learner(model, lm_batches(4), None, tmp_path, cfg=TrainConfig(**FAST, max_bad_steps=3))
    learn.fit_one_cycle(1, 1e-2)
    good = (tmp_path / "last.pt").read_bytes()
    with torch.no_grad():
        model.proj.bias.fill_(float("nan"))
    with pytest.warns(UserWarning, match="non-finite loss"), pytest.raises(NonFiniteLoss, match="last.pt"):
        learn.fit_one_cycle(1, 1e-2)
    assert (tmp_path / "last.pt").read_bytes() == good  # last good checkpoint kept
    assert torch.isnan(model.proj.bias).all()  # and no step was taken on the NaN batches


def test_lr_find_restores_and_suggests(tmp_path):
    torch.manual_seed(0)
    model = TinyLM()
    learn = Learner(model, lm_batches(8), None, tmp_path, cfg=TrainConfig(**FAST))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = learn.lr_find(num_it=40, suggest_funcs=("valley", "steep", "minimum"))
    assert res.lrs[0] == pytest.approx(1e-7) and len(res.lrs) <= 40
    assert res.lrs[1] / res.lrs[0] == pytest.approx((10 / 1e-7) ** (1 / 40))
    assert all(1e-7 <= v <= 10 for v in res.suggestions.values()) and set(res.suggestions) == {"valley", "steep",
                                                                                              "minimum"}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert learn.opt.state == {} and (tmp_path / "lr_find.png").exists() == HAS_MPL


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown metrics"):
        Learner(TinyLM(), lm_batches(2), metrics=["f1"], cfg=TrainConfig(**FAST))
    learn = Learner(TinyLM(), iter(lm_batches(2)), cfg=TrainConfig(**FAST))
    with pytest.raises(ValueError, match="len"):
        learn.fit_one_cycle(1, 1e-3)
    with pytest.raises(ValueError, match="precision"):
        Learner(TinyLM(), lm_batches(2), cfg=TrainConfig(progress=False, precision="fp8"))


def test_lr_find_suggestions_equal_fastai():
    """Values generated once with fastai 2.8.12 (refenv): valley/steep/minimum on this synthetic sweep."""
    from awdlstm.lr_find import suggest

    lrs = [1e-7 * (10 / 1e-7) ** (i / 100) for i in range(100)]
    losses = [2.5 - 1.5 / (1 + math.exp(-(i - 55) / 6)) + 0.05 * math.sin(i * 1.7) + (0 if i < 85 else 0.3 * (i - 85))
              for i in range(100)]
    got, points = suggest(lrs, losses, 100, ("valley", "steep", "minimum"))
    assert got["valley"] == pytest.approx(0.015848932787775993, rel=1e-6)
    assert got["steep"] == pytest.approx(0.001737800776027143, rel=1e-6)
    assert got["minimum"] == pytest.approx(0.05248074531555176, rel=1e-6)
    assert points["minimum"][0] == pytest.approx(0.5248074531555176, rel=1e-6)
    losses[50] = math.nan  # points after a NaN are dropped
    assert suggest(lrs, losses, 100, ("minimum",))[0]["minimum"] < 0.05248074531555176 / 2


def test_epoch_table_layout_equals_fastprogress():
    """Lines printed by fastprogress's console bar (fastai 2.8.12, refenv), copied once."""
    from awdlstm.report import EpochTable, format_time

    out = []
    table = EpochTable(["epoch", "train_loss", "valid_loss", "accuracy", "perplexity", "time"], printer=out.append)
    table.row([0, 4.1201121, 3.9123911, 0.2992214, 50.0108031, "09:17"])
    table.row([10, 4.1201121, 3.9123911, 0.2992214, 50.0108031, format_time(4157.9)])
    assert out == ["epoch     train_loss  valid_loss  accuracy  perplexity  time    ",
                   "0         4.120112    3.912391    0.299221  50.010803   09:17     ",
                   "10        4.120112    3.912391    0.299221  50.010803   1:09:17   "]
    assert format_time(59.99) == "00:59"


def test_plot_without_matplotlib_says_how(tmp_path, monkeypatch, capsys):
    import sys

    from awdlstm import report
    from awdlstm.report import plot_history

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    monkeypatch.setattr(report, "_hinted", False)  # the hint is said once per process
    assert plot_history(tmp_path, [], {"iter": [0], "loss": [1.0], "lr": [1e-3]}) is None
    assert "pip install 'awdlstm[plot]'" in capsys.readouterr().out


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_trains_with_fp32_weights_and_loss(precision):
    from awdlstm.precision import cpu_has_fast_bf16

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and (precision == "fp16" or not cpu_has_fast_bf16()):
        pytest.skip(f"{precision} autocast needs CUDA or a CPU with native bf16")
    torch.manual_seed(0)
    learn = Learner(TinyLM(), lm_batches(3), lm_batches(2, seed=1), device=device,
                    cfg=TrainConfig(**{**FAST, "precision": precision}))
    assert (learn.scaler is not None) == (precision == "fp16")
    rows = learn.fit_one_cycle(1, 1e-2)
    assert math.isfinite(rows[0]["train_loss"]) and math.isfinite(rows[0]["valid_loss"])
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())
    assert all(st["sqr_avg"].dtype == torch.float32 for st in learn.opt.state.values())


def test_real_language_model_and_classifier_train():
    """The model helper's LanguageModel / TextClassifier (awdlstm.model) through the loop: the book's recipes."""
    from awdlstm.classifier import TextClassifier
    from awdlstm.model import LanguageModel, clas_config, lm_config

    torch.manual_seed(0)
    lm = LanguageModel(16, lm_config(emb_sz=16, n_hid=32, n_layers=2, drop_mult=0.3))
    learn = Learner(lm, lm_batches(8), lm_batches(2, seed=1), cfg=TrainConfig(**FAST))
    start = learn.validate()["valid_loss"]
    learn.freeze()
    learn.fit_one_cycle(1, 3e-3)  # (a frozen epoch at a high lr can park this tiny LM on a unigram plateau)
    learn.unfreeze()
    rows = learn.fit_one_cycle(6, 3e-2)
    assert rows[-1]["valid_loss"] < 0.6 * start and rows[-1]["accuracy"] > 0.5

    clas = TextClassifier(16, 2, clas_config(emb_sz=8, n_hid=16, n_layers=2, drop_mult=0.3), lin_ftrs=[8], bptt=6)
    learn = Learner(clas, clas_batches(6), clas_batches(2, seed=1), metrics=["accuracy"],
                    cfg=TrainConfig(**FAST, moms=(0.95, 0.85, 0.95)))
    start = learn.validate()["valid_loss"]
    learn.freeze()
    learn.fit_one_cycle(1, 2e-2)
    for n in (-2, -3):
        learn.freeze_to(n)
        learn.fit_one_cycle(1, slice(1e-2 / 2.6**4, 1e-2))
    learn.unfreeze()
    rows = learn.fit_one_cycle(2, slice(1e-2 / 2.6**4, 1e-2))
    assert rows[-1]["valid_loss"] < start


class TorchLikeLoader:
    """Fixed batches; like torch's DataLoader (under fastai's) it draws one int64 from torch's RNG per pass."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        torch.empty((), dtype=torch.int64).random_()
        yield from self.batches


@pytest.mark.parametrize("fused", [False, True])
def test_lm_recipe_equals_fastai_end_to_end(fused, fixtures_dir):
    """Same weights, data and RNG stream: the loop reproduces fastai's table and every final weight
    (lm_recipe.pt, made by fastai itself: tests/fixtures/make_lm_recipe.py), with the decoder and loss fused
    (the default in fp32) or not (fastai's order of operations)."""
    from awdlstm.model import LanguageModel, lm_config
    from awdlstm.pretrained import map_fastai_keys

    ref = torch.load(fixtures_dir / "lm_recipe.pt", weights_only=True)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        lm = LanguageModel(16, lm_config(emb_sz=16, n_hid=32, n_layers=2, drop_mult=0.3))
        learn = Learner(lm, TorchLikeLoader(lm_batches(8)), TorchLikeLoader(lm_batches(2, seed=1)),
                        cfg=TrainConfig(progress=False, precision="fp32", fused_loss=fused))
        assert learn.fused_loss == fused
        learn.freeze()
        torch.manual_seed(1)
        rows = learn.fit_one_cycle(1, 3e-3)
        learn.unfreeze()
        rows += learn.fit_one_cycle(2, 1e-2)
    finally:
        torch.set_num_threads(threads)
    got = [[r["train_loss"], r["valid_loss"], r["accuracy"], r["perplexity"]] for r in rows]
    k = 10 if fused else 1  # the fused loss sums in another order: 10x the tolerance on the table
    torch.testing.assert_close(torch.tensor(got), torch.tensor(ref["rows"]), rtol=2e-6 * k, atol=0)
    # Where the kernels are fastai's own (same host, same torch) the unfused loop ends bit for bit on fastai's
    # weights; other kernels (torch's AVX2 or default paths, oneDNN/MKL at lower ISAs, the fused loss) round
    # elsewhere: the largest gap seen is 1.04e-7 on weights up to 0.32, about 3 float32 steps. Bound: 1e-6.
    want = map_fastai_keys(ref["state_dict"], {"0": "encoder", "1": "decoder"})
    got_sd = lm.state_dict()
    assert sorted(got_sd) == sorted(want)
    for name, w in want.items():
        torch.testing.assert_close(got_sd[name], w, rtol=0, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")


def test_gradient_clipping():
    torch.manual_seed(0)
    learn = Learner(TinyLM(), lm_batches(3), None, cfg=TrainConfig(**FAST, clip=0.01))
    norms = []
    step = learn.opt.step

    def recording_step():
        norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in learn.opt.params()])).item())
        step()

    learn.opt.step = recording_step
    learn.fit_one_cycle(1, 1e-2)
    assert len(norms) == 3 and max(norms) <= 0.01 + 1e-6


# Generated once with fastai 2.8.12 (refenv, 1 thread): the TextLearner of lm_recipe.pt (make_lm_recipe.py), built after
# torch.manual_seed(0), then torch.manual_seed(1) and learn.lr_find(num_it=20, suggest_funcs=(valley, steep,
# minimum)): recorder.losses (smoothed) and the three suggestions.
FASTAI_LRFIND_LOSSES = [
                  2.7695791721343994, 2.7694268226623535, 2.769526243209839, 2.7698299884796143,
                  2.7698023319244385, 2.76982045173645, 2.769659996032715, 2.769650459289551,
                  2.7696399688720703, 2.7695868015289307, 2.7695744037628174, 2.769442319869995,
                  2.7690517902374268, 2.768317461013794, 2.7670738697052, 2.7652268409729004,
                  2.7577109336853027, 2.7272608280181885, 2.6921303272247314, 2.6807761192321777]
FASTAI_LRFIND_SUGGESTIONS = {"valley": 6.30957365501672e-05, "steep": 0.015848932787775993,
                             "minimum": 0.003981071710586548}


def test_lr_find_equals_fastai_end_to_end():
    from awdlstm.model import LanguageModel, lm_config

    torch.manual_seed(0)
    lm = LanguageModel(16, lm_config(emb_sz=16, n_hid=32, n_layers=2, drop_mult=0.3))
    learn = Learner(lm, TorchLikeLoader(lm_batches(8)), TorchLikeLoader(lm_batches(2, seed=1)),
                    cfg=TrainConfig(progress=False, precision="fp32"))
    torch.manual_seed(1)
    res = learn.lr_find(num_it=20, suggest_funcs=("valley", "steep", "minimum"), plot=False)
    assert res.lrs == pytest.approx([1e-7 * 1e8 ** (i / 20) for i in range(20)], rel=1e-12)
    torch.testing.assert_close(torch.tensor(res.losses), torch.tensor(FASTAI_LRFIND_LOSSES), rtol=1e-6, atol=1e-6)
    assert res.suggestions == pytest.approx(FASTAI_LRFIND_SUGGESTIONS, rel=1e-6)


def test_missing_matplotlib_is_said_once(tmp_path, monkeypatch, capsys):
    """Without matplotlib every fit skips its plot, and the hint how to get plots is printed once."""
    import builtins

    from awdlstm import report

    real_import = builtins.__import__

    def no_mpl(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    monkeypatch.setattr(report, "_hinted", False)
    for _ in range(3):
        assert report.plot_history(tmp_path, [], {"iter": [], "loss": []}) is None
    assert report.plot_lr_find(tmp_path / "lr.png", [1e-3], [1.0], {}) is None
    assert capsys.readouterr().out.count("matplotlib is not installed") == 1
