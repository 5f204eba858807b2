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
from awdlstm.flops import (
    encoder_flops_per_token,
    encoder_weight_bytes,
    lm_flops_per_token,
    lm_weight_bytes_per_token,
    lstm_layer_sizes,
)
from awdlstm.quantize import quantize_int8


def bench_json(capsys, tmp_path, *args: str) -> dict:
    """`python scripts/dev/bench.py ARGS --json` (a developer tool, run as one): its JSON line."""
    cmd = [sys.executable, str(ROOT / "scripts" / "dev" / "bench.py"), *args, "--csv", str(SAMPLE), "--cache-dir",
           str(tmp_path), "--threads", "1", "--roof-seconds", "0.05", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if r["bench"] != "tokenize":
        assert_possible(r)
    return r


def shares(obj, path: str = ""):
    """Every (path, value) of a `share_pct` or `pct_of_peak` anywhere in a benchmark's JSON."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("share_pct", "pct_of_peak") and not isinstance(v, dict):
                yield f"{path}.{k}", v
            else:
                yield from shares(v, f"{path}.{k}")


def assert_possible(r: dict) -> None:
    """Every figure a benchmark reports is possible: a share of a roof in (0, 100], the binding roof the lower."""
    found = list(shares(r))
    assert found, "no roof reported"
    for path, v in found:  # pct_of_peak keeps one decimal: a tiny model's may round to 0.0
        assert (0 < v if path.endswith("share_pct") else 0 <= v) and v <= 100, \
            f"{path} = {v}%: a share of a roof above 100% means the FLOP count or the roof is wrong"
    roofs = [v for k, v in _walk(r) if k == "roof"]
    assert roofs
    for roof in roofs:
        lower = min((roof[k]["roof_per_s"], k) for k in ("compute", "memory") if k in roof)
        assert (roof["roof_per_s"], roof["bound"]) == lower


def _walk(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from _walk(v)


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
    cfg = lm_config(emb_sz=16, n_hid=32, n_layers=2)
    for prec, wb in (("fp32", 4), ("int8", 1)):  # batch 1: bounded by reading the weights, not by the FLOP peak
        roof = r["generate"][prec]["roof"]
        assert roof["memory"]["bytes_per_unit"] == lm_weight_bytes_per_token(cfg, 3000, wb)
        assert roof["memory"]["GB_per_s"] == r["bandwidth_GB_per_s"][prec] > 0


def _bench_machine():
    """scripts/dev/bench_machine.py, a developer tool beside bench.py, loaded from its path."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_machine", ROOT / "scripts" / "dev" / "bench_machine.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generation_roof_is_memory_bandwidth():
    """The issue's AMD EPYC figures: 400/1152/3 at vocab 60,000 reads ~177 MB of fp32 weights per word; at
    ~42 GB/s that is ~237 words/s, of which generation reached 147 (62.1%), not 7% of a FLOP peak."""
    cfg = AWDLSTMConfig()
    wb = lm_weight_bytes_per_token(cfg, 60000)
    assert 177e6 < wb < 177.5e6
    roofline = _bench_machine().roofline
    roof = roofline(147, "word", lm_flops_per_token(cfg, 60000), 1000.0, "fp32", wb, 42.0)
    assert roof["bound"] == "memory" and 236 < roof["roof_per_s"] < 238 and roof["share_pct"] == 62.1
    assert roof["compute"]["roof_per_s"] > 10 * roof["roof_per_s"]
    lm_train = roofline(1700, "token", lm_flops_per_token(cfg, 38392, training=True), 150.0, "fp32",
                        wb / (64 * 72), 20.0)  # batches of 64 x 72 tokens share one read of the weights
    assert lm_train["bound"] == "compute"


def test_flops_and_bytes_against_an_independent_count():
    """awdlstm/flops.py against torch's own FLOP counter running the LSTM step by step with the model's
    weights (every gate product an aten matmul), and against the model's parameter bytes."""
    from torch.nn import functional as F
    from torch.utils.flop_counter import FlopCounterMode
    cfg = AWDLSTMConfig(emb_sz=6, n_hid=10, n_layers=3)
    vocab, bs, sl = 40, 3, 5
    lm = LanguageModel(vocab, cfg).eval()
    x = torch.randint(0, vocab, (bs, sl))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        h = lm.encoder.encoder(x)  # (bs, sl, emb)
        for rnn in lm.encoder.rnns:
            m = rnn.module
            w_ih, w_hh = m.weight_ih_l0, m.weight_hh_l0
            hs, state, c = [], h.new_zeros(bs, m.hidden_size), h.new_zeros(bs, m.hidden_size)
            for t in range(sl):
                gates = F.linear(h[:, t], w_ih, m.bias_ih_l0) + F.linear(state, w_hh, m.bias_hh_l0)
                i, f, g, o = gates.chunk(4, 1)
                c = f.sigmoid() * c + i.sigmoid() * g.tanh()
                state = o.sigmoid() * c.tanh()
                hs.append(state)
            h = torch.stack(hs, 1)
        F.linear(h, lm.decoder.decoder.weight, lm.decoder.decoder.bias)
    assert counter.get_total_flops() == bs * sl * lm_flops_per_token(cfg, vocab)
    unique = {id(p): p for p in lm.parameters()}.values()  # the tied matrix once
    nbytes = sum(p.numel() * p.element_size() for p in unique)
    assert lm_weight_bytes_per_token(cfg, vocab) == nbytes + cfg.emb_sz * 4  # + the embedding row read
    rnn_bytes = sum(p.numel() * p.element_size() for p in lm.encoder.rnns.parameters())
    assert encoder_weight_bytes(cfg) == rnn_bytes


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


@pytest.mark.parametrize("limit", [0, 1024])
def test_bench_corpus_builds_reuses_and_reports(tmp_path, limit):
    """scripts/dev/bench_corpus.py on 3,000 documents cycling the shipped sample: the streamed build and its
    reuse agree on every count, and the figures are real measurements (memory peaks, rates). With
    --memory-limit (root and a memory cgroup: skipped elsewhere) the build runs inside the cap."""
    if limit and not (os.geteuid() == 0 and (os.path.isdir("/sys/fs/cgroup/memory")
                                             or os.path.exists("/sys/fs/cgroup/cgroup.controllers"))):
        pytest.skip("--memory-limit needs root and a memory cgroup")
    cmd = [sys.executable, str(ROOT / "scripts" / "dev" / "bench_corpus.py"), "--docs", "3000", "--workers", "1",
           "--dir", str(tmp_path), "--source", str(SAMPLE), *(["--memory-limit", str(limit)] if limit else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    made, built, reused = (json.loads(line) for line in out.stdout.strip().splitlines())
    assert made["csv_mib"] >= 1 and built["path"] == "streamed, built" and reused["path"] == "streamed, reused"
    for k in ("docs", "tokens", "types", "vocab", "train_tokens"):
        assert built[k] == reused[k] > 0, k
    assert built["docs"] == 3000 and built["train_tokens"] < built["tokens"]
    assert 0 < built["anon_main_mib"] <= built["rss_main_mib"] and built["batch_tok_s_map"] > 0
    assert ("batch_tok_s_memory" in built) == (not limit)
    if limit:
        assert built["cgroup_limit_mib"] == limit and 0 < built["cgroup_peak_mib"] <= limit
    assert not list(tmp_path.iterdir())  # the CSV and the corpus removed (no --keep)


def _hold_40_mib(_):
    import time
    block = bytearray(40 << 20)
    time.sleep(0.5)  # long enough for the sampler's 0.1 s period
    return len(block)


def test_bench_corpus_sees_the_fork_servers_workers():
    """bench_corpus.py's sampler reads the peak RSS of every descendant (the tokenizing workers are children of
    multiprocessing's fork server, which RUSAGE_CHILDREN never counts): a worker holding 40 MiB is seen."""
    import importlib.util
    import multiprocessing as mp
    spec = importlib.util.spec_from_file_location("bench_corpus", ROOT / "scripts" / "dev" / "bench_corpus.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    peak = bench.AnonPeak()
    with mp.get_context("forkserver").Pool(1) as pool:
        assert pool.map(_hold_40_mib, [0]) == [40 << 20]
    peak.stop()
    assert peak.workers_mib() >= 40 and peak.stop() > 0
