"""awdlstm/precision.py: which autocast a run gets. Tests about other things pin `precision="fp32"`; the bf16
behaviour is tested here, explicitly, on hosts whose CPU has native bf16, and skipped (with the reason) elsewhere."""
import pytest
import torch

from awdlstm import LanguageModel, TextClassifier, clas_config, lm_config
from awdlstm import precision as P
from awdlstm.precision import auto_precision, cpu_has_fast_bf16, cpu_model, host_kind, resolve_precision
from awdlstm.train import Learner, TrainConfig

CPU = torch.device("cpu")
NATIVE = cpu_has_fast_bf16()
needs_native_bf16 = pytest.mark.skipif(not NATIVE, reason="this CPU has no native bf16 (oneDNN reports none)")
needs_emulated_bf16 = pytest.mark.skipif(NATIVE, reason="this CPU has native bf16: bf16 is not refused here")


def test_fp32_and_the_refusals_on_any_cpu():
    fp32 = resolve_precision("fp32", CPU)
    assert (fp32.name, fp32.dtype, fp32.use_scaler) == ("fp32", None, False)
    with fp32.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", CPU)


@pytest.mark.parametrize("native", [False, True])
def test_auto_on_a_cpu_is_fp32_unless_bf16_was_timed_faster_for_the_workload(monkeypatch, native):
    """The rule, on both kinds of host: bf16 only for a listed workload, only with native bf16, and only where
    the step was timed at least BF16_MIN_SPEEDUP times faster in bf16; nothing is timed elsewhere."""
    def never():
        raise AssertionError("timed where nothing should be")

    monkeypatch.setattr(P, "cpu_has_fast_bf16", lambda: native)
    monkeypatch.setattr(P, "CPU_BF16_WORKLOADS", frozenset())
    assert [auto_precision(CPU, w, never) for w in (None, "lm", "clas")] == ["fp32"] * 3
    monkeypatch.setattr(P, "CPU_BF16_WORKLOADS", frozenset({"lm"}))
    assert auto_precision(CPU, "clas", never) == auto_precision(CPU, None, never) == "fp32"
    assert auto_precision(CPU, "lm") == "fp32"  # nothing to time: fp32
    for speedup, want in ((None, "fp32"), (0.7, "fp32"), (P.BF16_MIN_SPEEDUP - 0.01, "fp32"),
                          (P.BF16_MIN_SPEEDUP, "bf16"), (1.8, "bf16")):
        timed = lambda s=speedup: s  # noqa: E731
        assert auto_precision(CPU, "lm", timed if native else never) == (want if native else "fp32"), speedup
    assert resolve_precision("auto", CPU, "lm", lambda: 2.0).dtype == (torch.bfloat16 if native else None)
    with pytest.raises(ValueError, match="workload must be one of"):
        auto_precision(CPU, "generate")


def test_time_bf16_speedup_warms_up_alternates_and_keeps_the_fastest(monkeypatch):
    clock, calls = [0.0], []
    cost = {"fp32": [9.0, 2.0, 3.0], "bf16": [9.0, 1.5, 1.0]}  # seconds of each call, warm-up first

    def step(p):
        calls.append(p.name)
        assert p.device_type == "cpu" and p.dtype == (torch.bfloat16 if p.name == "bf16" else None)
        clock[0] += cost[p.name].pop(0)

    monkeypatch.setattr(P.time, "perf_counter", lambda: clock[0])
    assert P.time_bf16_speedup(step, repeats=2) == 2.0 / 1.0
    assert calls == ["fp32", "bf16"] * 3


def test_auto_on_this_host_and_what_the_learner_asks_for():
    """On this host: Learner asks for its model's workload ('lm', 'clas', else None) and times an LM's step in
    both precisions where the CPU has native bf16; with no batch to time, fp32."""
    from tiny_models import clas_batches, lm_batches

    lm = LanguageModel(16, lm_config(emb_sz=8, n_hid=8, n_layers=1))
    clas = TextClassifier(16, 2, clas_config(emb_sz=8, n_hid=8, n_layers=1))
    for model, w, dl in ((lm, "lm", lm_batches(2)), (clas, "clas", clas_batches(2))):
        learn = Learner(model, [], cfg=TrainConfig(progress=False), device="cpu")
        assert learn.precision.name == "fp32" and learn.bf16_speedup is None
        learn = Learner(model, dl, cfg=TrainConfig(progress=False), device="cpu")
        timed = NATIVE and w in P.CPU_BF16_WORKLOADS
        assert (learn.bf16_speedup is not None) == timed and not learn.precision.use_scaler
        bf16 = timed and learn.bf16_speedup >= P.BF16_MIN_SPEEDUP
        assert learn.precision.name == ("bf16" if bf16 else "fp32")
        note = learn.precision_note()
        assert note.startswith(learn.precision.name) and ("(auto: one training step ran" in note) == timed
        assert all(p.grad is None for p in model.parameters())


@needs_native_bf16
@pytest.mark.parametrize("threshold", [0.0, float("inf")])
def test_timing_the_step_leaves_the_run_as_it_was(monkeypatch, threshold):
    """'auto' times a step in fp32 and bf16 before training: the run then equals, bit for bit, one that was told
    the chosen precision (same weights, dropout masks, loader order)."""
    from awdlstm.data.lm_loader import LMLoader

    monkeypatch.setattr(P, "BF16_MIN_SPEEDUP", threshold)  # 0: bf16 is chosen, inf: fp32 is
    docs = (torch.randint(2, 30, (400,)).numpy(), torch.tensor([0, 150, 260, 400]).numpy())
    out = []
    for precision in ("auto", "bf16" if threshold == 0.0 else "fp32"):
        torch.manual_seed(0)
        model = LanguageModel(30, lm_config(emb_sz=8, n_hid=16, n_layers=2))
        dl = LMLoader(docs, bs=4, seq_len=8, seed=1)
        learn = Learner(model, dl, cfg=TrainConfig(progress=False, precision=precision), device="cpu")
        assert (learn.bf16_speedup is not None) == (precision == "auto")
        rows = learn.fit_one_cycle(1, 1e-2)
        out.append((learn.precision.name, rows[-1]["train_loss"], model.state_dict()))
    (name_a, loss_a, sd_a), (name_b, loss_b, sd_b) = out
    assert name_a == name_b and loss_a == loss_b
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)


@pytest.mark.parametrize("native", [False, True])
def test_a_loaded_checkpoint_keeps_its_precision_under_auto(monkeypatch, tmp_path, native):
    """'auto' may time otherwise on the machine that resumes: the checkpoint's precision wins where it can run,
    and where it cannot (bf16 without native bf16) a warning says so."""
    monkeypatch.setattr(P, "cpu_has_fast_bf16", lambda: native)
    model = LanguageModel(16, lm_config(emb_sz=8, n_hid=8, n_layers=1))
    saver = Learner(model, [], cfg=TrainConfig(progress=False, precision="fp32"), device="cpu")
    saver.precision = P.Precision("bf16", "cpu", torch.bfloat16, False)  # as a run on a bf16 machine saved it
    path = saver.save(tmp_path / "last.pt")
    learn = Learner(model, [], cfg=TrainConfig(progress=False), device="cpu")  # auto, nothing timed: fp32
    assert learn.precision.name == "fp32"
    if native:
        learn.load(path)
        assert learn.precision.name == "bf16"
    else:
        with pytest.warns(UserWarning, match="trained in bf16, which this machine cannot run"):
            learn.load(path)
        assert learn.precision.name == "fp32"
    told = Learner(model, [], cfg=TrainConfig(progress=False, precision="fp32"), device="cpu")
    told.load(path)
    assert told.precision.name == "fp32"  # an explicit precision is the user's


@needs_native_bf16
def test_bf16_on_a_cpu_with_native_bf16():
    bf16 = resolve_precision("bf16", CPU)
    assert (bf16.name, bf16.dtype, bf16.use_scaler) == ("bf16", torch.bfloat16, False)
    torch.manual_seed(0)
    lm = LanguageModel(50, lm_config(emb_sz=16, n_hid=32, n_layers=2, drop_mult=0.0)).eval()
    x = torch.randint(2, 50, (3, 7))
    with torch.no_grad():
        ref = lm(x)[0]
        lm.reset()
        with bf16.autocast():
            got = lm(x)[0]
    assert got.dtype == torch.bfloat16 and ref.dtype == torch.float32  # the products really ran in bf16
    assert all(p.dtype == torch.float32 for p in lm.parameters())  # the weights stay fp32
    torch.testing.assert_close(got.float(), ref, atol=0.05, rtol=0.05)  # bf16 keeps 8 bits of mantissa


@needs_emulated_bf16
def test_bf16_is_refused_on_a_cpu_without_native_bf16():
    with pytest.raises(ValueError, match="no native bf16"):
        resolve_precision("bf16", CPU)


def test_host_kind_names_the_cpu_and_its_bf16():
    line = host_kind()
    assert line.startswith("host: ") and cpu_model() in line and torch.__version__ in line
    assert ("native bf16," in line) == NATIVE and ("no native bf16" in line) == (not NATIVE)
