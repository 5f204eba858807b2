"""Part `parity` of gpu_check.py: the device computes what the CPU computes. fastai's fixture weights
(tests/fixtures) give fastai's outputs; the full-size LM and classifier (random weights) give the CPU's outputs in
fp32 with TF32 off; train-mode steps with WeightDropout on cuDNN's LSTM give the CPU's losses, gradients and
weights when both sides use the same dropout masks (gpu_mask_tape.py)."""
from __future__ import annotations

import contextlib
import copy
import math
import time

import torch
from gpu_check_common import FULL, ROOT, TINY, Checks, gpu_info, maxdiff, rel_maxdiff
from gpu_mask_tape import MaskTape, compare_steps, train_steps

FIXTURES = ROOT / "tests" / "fixtures"


def exact_fp32() -> dict:
    """TF32 off for matrix products and cuDNN (convolutions and RNNs): fp32 is fp32. Uses the new
    `fp32_precision` flags where torch has them (mixing them with the legacy `allow_tf32` is an error)."""
    b = torch.backends
    if hasattr(b, "fp32_precision"):
        for obj in (b.cuda.matmul, b.cudnn, b.cudnn.conv, b.cudnn.rnn):
            with contextlib.suppress(AttributeError, RuntimeError):
                obj.fp32_precision = "ieee"
        state = {}
        for name, obj in (("matmul", b.cuda.matmul), ("cudnn_rnn", b.cudnn.rnn), ("cudnn_conv", b.cudnn.conv)):
            with contextlib.suppress(AttributeError, RuntimeError):
                state[name] = obj.fp32_precision
        return state
    b.cuda.matmul.allow_tf32 = False
    b.cudnn.allow_tf32 = False
    return {"matmul_allow_tf32": b.cuda.matmul.allow_tf32, "cudnn_allow_tf32": b.cudnn.allow_tf32}


class Laps:
    """Seconds per section: `lap("name")` closes the section that began at the previous call."""

    def __init__(self):
        self.t, self.times = time.time(), {}

    def __call__(self, name: str) -> None:
        now = time.time()
        self.times[name] = round(now - self.t, 2)
        self.t = now


def part_parity(ctx: dict) -> dict:
    """fastai's fixtures on the device; full-size CPU vs device in eval and train mode (same masks)."""
    from awdlstm import LanguageModel, TextClassifier, clas_config, from_fastai_state_dict, lm_config
    from awdlstm.data import ClasLoader
    from awdlstm.fused_loss import fused_lm_loss
    dev, tiny = torch.device(ctx["device"]), ctx["tiny"]
    S = TINY if tiny else FULL
    gpu = gpu_info() if dev.type == "cuda" else {}
    tf32 = exact_fp32()
    checks, det = Checks(), {"tf32": tf32, "sizes": S, **gpu}
    if dev.type == "cpu":
        det["note"] = "dry run: the 'device' side is the CPU itself"
    lap = Laps()
    lm_fx = torch.load(FIXTURES / "awd_lstm_lm.pt", weights_only=True)
    clas_fx = torch.load(FIXTURES / "classifier.pt", weights_only=True)

    # 1. fastai's own fixture weights on the device, eval mode, against fastai's stored outputs
    c = lm_fx["config"]["get_language_model_config"]
    lm = LanguageModel(lm_fx["config"]["vocab_sz"], lm_config(emb_sz=c["emb_sz"], n_hid=c["n_hid"], n_layers=c["n_layers"]))
    lm = from_fastai_state_dict(lm, lm_fx["state_dict"]).eval().to(dev)
    with torch.no_grad():
        lm.reset()
        d1 = maxdiff(lm(lm_fx["input_1"].to(dev))[0], lm_fx["logits_1"])
        d2 = maxdiff(lm(lm_fx["input_2"].to(dev))[0], lm_fx["logits_2"])  # the hidden state carried over
        lm.reset()
        d3 = maxdiff(lm(lm_fx["input_2"].to(dev))[0], lm_fx["logits_after_reset"])
    checks.add("fastai fixture LM logits (eval; carried state; after reset), max |diff|", max(d1, d2, d3) <= 1e-5,
               max(d1, d2, d3), 1e-5)
    cc, e = clas_fx["config"], clas_fx["config"]["encoder_config"]
    clas = TextClassifier(cc["vocab_sz"], cc["n_class"], clas_config(emb_sz=e["emb_sz"], n_hid=e["n_hid"],
                          n_layers=e["n_layers"]), lin_ftrs=cc["lin_ftrs"], bptt=cc["seq_len"], max_len=cc["max_len"])
    clas = from_fastai_state_dict(clas, clas_fx["state_dict"]).eval().to(dev)
    with torch.no_grad():
        d4 = maxdiff(clas(clas_fx["input"].to(dev))[0], clas_fx["logits"])
        from_fastai_state_dict(clas, {**clas_fx["state_dict"], **clas_fx["bn_randomized"]["overrides"]})
        d5 = maxdiff(clas.eval()(clas_fx["input"].to(dev))[0], clas_fx["bn_randomized"]["logits"])
    checks.add("fastai fixture classifier logits (eval; BatchNorm randomized), max |diff|", max(d4, d5) <= 1e-5,
               max(d4, d5), 1e-5)
    del lm, clas
    lap("fixtures")

    # 2. full size, random weights, eval: the device's outputs are the CPU's
    V, bs, sl = S["vocab"], 8 if not tiny else 4, S["seq_len"]
    torch.manual_seed(0)
    cpu_lm = LanguageModel(V, lm_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"])).eval()
    dev_lm = copy.deepcopy(cpu_lm).to(dev)
    g = torch.Generator().manual_seed(1)
    xs = [torch.randint(2, V, (bs, sl), generator=g) for _ in range(2)]
    with torch.no_grad():
        cpu_out = [cpu_lm(x)[0] for x in xs]  # the second call starts from the first one's hidden state
        dev_out = [dev_lm(x.to(dev))[0] for x in xs]
    r_lm = max(rel_maxdiff(a, b) for a, b in zip(dev_out, cpu_out, strict=True))
    a_lm = max(maxdiff(a, b) for a, b in zip(dev_out, cpu_out, strict=True))
    checks.add(f"full-size LM logits {S['emb']}/{S['hid']}/{S['layers']} vocab {V}, eval, fp32: max |diff| / max |cpu|",
               r_lm <= 1e-4, r_lm, 1e-4, note=f"max |diff| {a_lm:.3g}")
    del cpu_lm, dev_lm, cpu_out, dev_out
    lens = [600, 400, 250, 150, 100, 60, 30, 10] if not tiny else [40, 25, 12, 5]
    docs = [[2] + torch.randint(2, V, (n - 1,), generator=g).tolist() for n in lens]
    x_clas = next(iter(ClasLoader(docs, None, bs=len(docs), seq_len=72 if not tiny else 8, shuffle=False)))[0]
    torch.manual_seed(0)
    mk = dict(bptt=72, max_len=1440) if not tiny else dict(bptt=8, max_len=32)
    cpu_clas = TextClassifier(V, 2, clas_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"]), **mk).eval()
    dev_clas = copy.deepcopy(cpu_clas).to(dev)
    with torch.no_grad():
        r_cl = rel_maxdiff(dev_clas(x_clas.to(dev))[0], cpu_clas(x_clas)[0])
    checks.add(f"full-size classifier logits ({len(lens)} documents of {min(lens)}-{max(lens)} tokens), eval, fp32: "
               "max |diff| / max |cpu|", r_cl <= 1e-4, r_cl, 1e-4)
    del cpu_clas, dev_clas
    lap("full-size eval")

    # 3. train mode: WeightDropout on cuDNN's LSTM, the same masks on both sides
    steps = 3 if not tiny else 2
    torch.manual_seed(0)
    base = LanguageModel(V, lm_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"], drop_mult=1.0))
    batches = [(torch.randint(2, V, (bs, sl), generator=g), torch.randint(2, V, (bs, sl), generator=g))
               for _ in range(steps)]
    tape = MaskTape()
    cpu = train_steps(copy.deepcopy(base), batches, "lm", torch.device("cpu"), tape)
    tape.replay()
    dv = train_steps(copy.deepcopy(base), batches, "lm", dev, tape)
    cmp = compare_steps(cpu, dv)
    det["lm_train"] = {**cmp, "masks": len(tape.masks)}
    checks.add(f"LM train-mode steps ({steps}, WeightDropout {base.cfg.dropouts()['weight_p']:.2g}, same masks): "
               "losses finite, max |diff| / max(1, |loss|)", cmp["finite"] and cmp["loss_rel"] <= 1e-5,
               cmp["loss_rel"], 1e-5)
    checks.add("LM train-mode gradients, every parameter every step: max |diff| / max |cpu grad|",
               cmp["grad_rel"] <= 1e-3, cmp["grad_rel"], 1e-3, note=f"worst {cmp['worst_grad']}")
    checks.add("LM weights after the SGD steps (lr 1), max |diff|", cmp["weights_maxdiff"] <= 1e-5,
               cmp["weights_maxdiff"], 1e-5)
    lap("LM train steps")
    torch.manual_seed(0)
    cbase = TextClassifier(V, 2, clas_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"], output_p=0.0),
                           ps=[0.0], **mk)  # no head dropout: nn.Dropout's masks are not on the tape
    tlens = [200, 150, 100, 80, 60, 40, 20, 8] if not tiny else [30, 20, 9, 4]
    tdocs = [[2] + torch.randint(2, V, (n - 1,), generator=g).tolist() for n in tlens]
    xb = next(iter(ClasLoader(tdocs, None, bs=len(tdocs), seq_len=mk["bptt"], shuffle=False)))[0]
    cbatches = [(xb, torch.randint(0, 2, (len(tlens),), generator=g)) for _ in range(2)]
    tape = MaskTape()
    cpu = train_steps(copy.deepcopy(cbase), cbatches, "clas", torch.device("cpu"), tape, lr=0.1)
    tape.replay()
    dv = train_steps(copy.deepcopy(cbase), cbatches, "clas", dev, tape, lr=0.1)
    ccmp = compare_steps(cpu, dv)
    det["clas_train"] = {**ccmp, "masks": len(tape.masks)}
    checks.add("classifier train-mode steps (2, SentenceEncoder chunks, same masks): losses and gradients",
               ccmp["finite"] and ccmp["loss_rel"] <= 1e-5 and ccmp["grad_rel"] <= 1e-3,
               {"loss_rel": ccmp["loss_rel"], "grad_rel": ccmp["grad_rel"]}, {"loss_rel": 1e-5, "grad_rel": 1e-3})

    lap("classifier train steps")

    # 4. the real DropConnect on the device (its own RNG): finite, the raw weight trained, nothing replaced
    import warnings
    model = copy.deepcopy(base).to(dev).train()
    model.reset()
    rnn = model.encoder.rnns[0]
    raw_before = rnn.module.weight_hh_l0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, y = batches[0]
        loss, raw, out = fused_lm_loss(model, x.to(dev), y.to(dev))  # as Learner trains an LM in fp32
        loss.backward()
    g_raw = raw_before.grad
    flat_warn = [str(w.message)[:120] for w in caught if "contiguous" in str(w.message)]
    ok = (math.isfinite(float(loss.detach())) and g_raw is not None and bool(torch.isfinite(g_raw).all())
          and float(g_raw.abs().sum()) > 0 and rnn.module.weight_hh_l0 is raw_before
          and "weight_hh_l0" in dict(rnn.module.named_parameters()))
    det["dropconnect_on_device"] = {"loss": float(loss.detach()), "raw_grad_abs_sum": float(g_raw.abs().sum()) if g_raw is not None else None,
                                    "flat_weight_warnings": flat_warn}
    checks.add("WeightDropout with the device's own RNG: finite loss, the raw weight_hh gets a finite non-zero "
               "gradient and stays the LSTM's parameter", ok, float(loss.detach()))
    lap("DropConnect on the device")
    det["seconds"] = lap.times
    figure = (f"LM logits rel diff {r_lm:.2g}, classifier {r_cl:.2g}; train-mode grads rel diff "
              f"{max(cmp['grad_rel'], ccmp['grad_rel']):.2g} (TF32 off)")
    return checks.result(figure, **det)
