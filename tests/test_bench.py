"""scripts/dev/bench.py runs end to end on the shipped sample corpus with tiny sizes and prints valid JSON;
awdlstm/flops.py counts what the model computes; awdlstm/quantize.py's int8 copy predicts like the original."""
import json
import math
import os
import subprocess
import sys

import pytest
import torch
from run_scripts import ROOT, SAMPLE

from awdlstm import AWDLSTMConfig, LanguageModel, TextClassifier, clas_config, lm_config
from awdlstm.flops import encoder_flops_per_token, lm_flops_per_token, lstm_layer_sizes
from awdlstm.quantize import quantize_int8


def bench_json(capsys, tmp_path, *args: str) -> dict:
    """`python scripts/dev/bench.py ARGS --json` (a developer tool, run as one): its JSON line."""
    cmd = [sys.executable, str(ROOT / "scripts" / "dev" / "bench.py"), *args, "--csv", str(SAMPLE), "--cache-dir",
           str(tmp_path), "--threads", "1", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


LM_TINY = ("lm", "--emb", "16", "--hid", "32", "--layers", "2", "--bs", "4", "--seq-len", "8", "--max-vocab", "500",
           "--docs", "20", "--steps", "2", "--warmup", "1", "--precision", "fp32")  # pinned: `auto` depends on the host


def test_bench_lm_tiny(capsys, tmp_path):
    r = bench_json(capsys, tmp_path, *LM_TINY)
    assert r["bench"] == "lm" and r["precision"] == "fp32" and r["steps"] == 2 and r["docs"] == 20
    assert r["vocab"] <= 504 and r["vocab"] % 8 == 0
    assert len(r["losses"]) == 3 and all(math.isfinite(v) for v in r["losses"])
    assert abs(r["losses"][0] - math.log(r["vocab"])) < 1.0  # random weights: loss ~ log(vocab)
    assert r["tokens_per_s"] > 0 and r["GFLOP_per_s"] > 0 and r["peak_memory_MiB"] > 0
    assert set(r["peak_GFLOP_per_s"]) == {"fp32", "bf16"}
    cfg = lm_config(emb_sz=16, n_hid=32, n_layers=2)
    assert r["MFLOP_per_token"] == round(lm_flops_per_token(cfg, r["vocab"], training=True) / 1e6, 2)
    assert r["fused_loss"] is True
    plain = bench_json(capsys, tmp_path, *LM_TINY, "--unfused-loss")  # same draws, same updates, same losses
    assert plain["fused_loss"] is False and plain["losses"] == pytest.approx(r["losses"], abs=1e-5)


def test_bench_clas_tiny(capsys, tmp_path):
    r = bench_json(capsys, tmp_path, "clas", "--docs", "3", "--bs", "3", "--train-steps", "1", "--emb", "16",
                   "--hid", "32", "--layers", "2", "--precisions", "fp32,int8")
    assert r["docs"] == 3 and set(r["inference"]) == {"fp32", "int8"}
    assert r["inference"]["fp32"]["agreement_with_first"] == 1.0
    assert 0.0 <= r["inference"]["int8"]["agreement_with_first"] <= 1.0
    assert r["inference"]["fp32"]["reviews_per_s"] > 0 and r["training"]["reviews_per_s"] > 0
    cfg = clas_config(emb_sz=16, n_hid=32, n_layers=2)
    assert r["MFLOP_per_token"] == round(encoder_flops_per_token(cfg) / 1e6, 2)


def test_bench_generate_tiny(capsys, tmp_path):
    r = bench_json(capsys, tmp_path, "generate", "--n-words", "5", "--reps", "1", "--emb", "16", "--hid", "32",
                   "--layers", "2", "--vocab-size", "3000", "--precisions", "fp32,int8")
    assert r["vocab"] == 3000 and r["n_words"] == 5 and set(r["generate"]) == {"fp32", "int8"}
    assert r["generate"]["fp32"]["words_per_s"] > 0 and r["generate"]["fp32"]["greedy_same_as_first"] is True


def test_flops_counts_the_lstm_products():
    cfg = AWDLSTMConfig(emb_sz=4, n_hid=6, n_layers=3)
    assert lstm_layer_sizes(cfg) == [(4, 6), (6, 6), (6, 4)]
    # an nn.LSTM's weights hold one multiply-add per token per entry (biases aside)
    lm = LanguageModel(10, cfg)
    n_w = sum(p.numel() for n, p in lm.encoder.rnns.named_parameters() if "weight" in n)
    assert encoder_flops_per_token(cfg) == 2 * n_w
    assert lm_flops_per_token(cfg, 10) == 2 * n_w + 2 * 4 * 10
    assert lm_flops_per_token(cfg, 10, training=True) == 3 * lm_flops_per_token(cfg, 10)


@pytest.mark.skipif("fbgemm" not in torch.backends.quantized.supported_engines, reason="no fbgemm int8 engine")
def test_int8_copy_predicts_like_fp32():
    torch.manual_seed(0)
    model = TextClassifier(50, 2, clas_config(emb_sz=32, n_hid=64, n_layers=2), bptt=8, max_len=32).eval()
    q = quantize_int8(model)
    assert model.encoder.module.rnns[0].__class__.__name__ == "WeightDropout"  # the original is untouched
    assert q.encoder.module.rnns[0].__class__.__module__.startswith("torch.ao.nn.quantized")
    w = q.encoder.module.rnns[0]._weight_bias()["weight"]["weight_ih_l0"]  # the int8 weight, unpacked
    assert w.qscheme() == torch.per_channel_affine and w.q_per_channel_scales().numel() == 4 * 64  # a scale per row
    assert all(type(m) is torch.nn.Linear for m in q.head.modules() if isinstance(m, torch.nn.Linear))  # fp32 head
    x = torch.randint(2, 50, (6, 20))
    with torch.inference_mode():
        ref, out = model(x)[0], q(x)[0]
    assert out.shape == ref.shape and not torch.equal(out, ref)  # int8 arithmetic, not the fp32 path
    assert torch.allclose(out, ref, atol=0.05 * ref.abs().max().item())
    lm = LanguageModel(50, lm_config(emb_sz=32, n_hid=64, n_layers=2)).eval()
    qlm = quantize_int8(lm)
    assert qlm.decoder.decoder.__class__.__module__.startswith("torch.ao.nn.quantized")  # the big matrix too
    with torch.inference_mode():
        ref, out = lm(x)[0], qlm(x)[0]
    assert torch.allclose(out, ref, atol=0.05 * ref.abs().max().item()) and not torch.equal(out, ref)


def test_bench_lm_bf16_trains_with_the_bf16_fused_loss(capsys, tmp_path):
    """On any CPU (emulated bf16 where it has no native bf16: slow, but these sizes are tiny)."""
    r = bench_json(capsys, tmp_path, *LM_TINY, "--precision", "bf16")
    assert r["precision"] == "bf16" and r["fused_loss"] is True  # fused_loss_bf16.py
    assert len(r["losses"]) == 3 and abs(r["losses"][0] - math.log(r["vocab"])) < 1.0
