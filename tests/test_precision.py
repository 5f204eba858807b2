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
def test_auto_on_a_cpu_is_fp32_unless_bf16_was_measured_faster_for_the_workload(monkeypatch, native):
    """The rule, on both kinds of host: bf16 only for a listed workload, and only with native bf16."""
    monkeypatch.setattr(P, "cpu_has_fast_bf16", lambda: native)
    monkeypatch.setattr(P, "CPU_BF16_WORKLOADS", frozenset())
    assert [auto_precision(CPU, w) for w in (None, "lm", "clas")] == ["fp32"] * 3
    monkeypatch.setattr(P, "CPU_BF16_WORKLOADS", frozenset({"lm"}))
    assert auto_precision(CPU, "lm") == ("bf16" if native else "fp32")
    assert auto_precision(CPU, "clas") == auto_precision(CPU, None) == "fp32"
    assert resolve_precision("auto", CPU, "lm").dtype == (torch.bfloat16 if native else None)
    with pytest.raises(ValueError, match="workload must be one of"):
        auto_precision(CPU, "generate")


def test_auto_on_this_host_and_what_the_learner_asks_for():
    """The shipped list, on this host: Learner asks for its model's workload ('lm', 'clas', else None)."""
    for w in P.WORKLOADS:
        assert auto_precision(CPU, w) == ("bf16" if NATIVE and w in P.CPU_BF16_WORKLOADS else "fp32")
    lm = LanguageModel(20, lm_config(emb_sz=8, n_hid=8, n_layers=1))
    clas = TextClassifier(20, 2, clas_config(emb_sz=8, n_hid=8, n_layers=1))
    for model, w in ((lm, "lm"), (clas, "clas")):
        learn = Learner(model, [], cfg=TrainConfig(progress=False), device="cpu")
        assert learn.precision.name == auto_precision(CPU, w) and not learn.precision.use_scaler


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
