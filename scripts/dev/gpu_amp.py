"""Part `amp` of gpu_check.py: mixed precision trains like fp32. Learners in fp32, bf16 and fp16 + GradScaler
take the same training steps of the full-size LM in lockstep (same batches, same initial weights, same seed per
step): the mixed-precision losses track fp32's, none is NaN, and the scaler's skipped steps are counted."""
from __future__ import annotations

import contextlib
import copy
import math
import time

import torch
from gpu_check_common import FULL, TINY, Checks, gpu_info, tf32_state


def part_amp(ctx: dict) -> dict:
    """fp32, bf16 and fp16 + GradScaler Learners in lockstep on the same batches."""
    import numpy as np

    from awdlstm import LanguageModel, lm_config
    from awdlstm.data import FastLMLoader
    from awdlstm.data.sources import imdb_embedded
    from awdlstm.precision import cpu_has_fast_bf16
    from awdlstm.tokenizers.corpus import select_docs, tokenize_corpus
    from awdlstm.tokenizers.vocab import Vocab
    from awdlstm.train import Learner, TrainConfig
    t0 = time.time()
    deadline = ctx["started_at"] + ctx["budget"] - 15  # the parent's clock: this process's start counts too
    dev, tiny = torch.device(ctx["device"]), ctx["tiny"]
    S = TINY if tiny else FULL
    texts = imdb_embedded(ctx["corpus_csv"])
    corpus = tokenize_corpus(texts.texts, cache_dir=ctx["cache_dir"], progress=False)
    vocab = Vocab.from_counts(corpus.counts(), min_freq=2 if tiny else 3, max_vocab=S["vocab"])
    ids, offsets = corpus.numericalize(vocab)
    train = select_docs(ids, offsets, np.flatnonzero(~np.asarray(texts.is_valid)))
    dl = FastLMLoader(train, bs=S["bs"], seq_len=S["seq_len"], shuffle=True, seed=0)
    print(f"  {len(texts)} reviews tokenized, vocab {len(vocab)}, {len(dl)} batches of {S['bs']} x {S['seq_len']} "
          f"per epoch ({time.time() - t0:.1f} s)", flush=True)
    precisions, skipped = ["fp32"], {}  # the names each Learner is reported under
    if dev.type == "cuda":
        if torch.cuda.is_bf16_supported():
            precisions.append("bf16")
        else:
            skipped["bf16"] = "skipped: this GPU has no bf16"
        precisions.append("fp16")
    else:
        if cpu_has_fast_bf16():
            precisions.append("bf16")
        else:
            skipped["bf16"] = "skipped: this CPU has no native bf16 (AVX2-only host)"
        skipped["fp16"] = "skipped: needs CUDA"
        precisions.append("fp32+scaler")  # the dry run of fp16's GradScaler bookkeeping, on the CPU
    torch.manual_seed(0)
    base = LanguageModel(len(vocab), lm_config(emb_sz=S["emb"], n_hid=S["hid"], n_layers=S["layers"], drop_mult=0.3))
    learners = {}
    for p in precisions:
        cfg = TrainConfig(precision="fp32" if p == "fp32+scaler" else p, progress=False)
        learn = Learner(copy.deepcopy(base), dl, None, cfg=cfg, device=dev)
        if p == "fp32+scaler":
            learn.scaler = torch.amp.GradScaler("cpu")
        learn.opt.set_hyper("lr", ctx["amp_lr"])
        learn.model.train()
        learn.model.reset()
        learners[p] = learn
    del base
    losses = {p: [] for p in precisions}
    secs = {p: 0.0 for p in precisions}
    skips = {p: 0 for p in precisions if learners[p].scaler is not None}
    n_steps, batches, step = ctx["amp_steps"], iter(dl), 0
    while step < n_steps and time.time() < deadline:
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(dl)
            x, y = next(batches)
        for p, learn in learners.items():
            torch.manual_seed(1000 + step)  # the same dropout draws for every precision
            scale = learn.scaler.get_scale() if learn.scaler is not None else None
            ts = time.perf_counter()
            with warnings_ignored():
                losses[p].append(learn.train_batch(x, y))  # .item() inside: the step is done when it returns
            secs[p] += time.perf_counter() - ts
            if scale is not None and learn.scaler.get_scale() < scale:
                skips[p] += 1  # the scaler found inf/nan gradients, skipped the step and lowered its scale
        step += 1
        if step % 25 == 0:
            print("  step " + str(step) + ": " + ", ".join(f"{p} {v[-1]:.4f}" for p, v in losses.items()), flush=True)
    checks = Checks()
    k = max(1, min(50, step // 5))
    tail = {p: float(np.mean(v[-k:])) for p, v in losses.items() if v}
    nonfinite = {p: sum(not math.isfinite(v) for v in vs) for p, vs in losses.items()}
    per = {p: {"ms_per_step": round(1e3 * secs[p] / max(1, step), 1), "first_loss": vs[0] if vs else None,
               f"mean_loss_last_{k}": tail.get(p), "nonfinite_losses": nonfinite[p],
               "max_abs_diff_vs_fp32": (max(abs(a - b) for a, b in zip(vs, losses["fp32"], strict=True))
                                        if vs and p != "fp32" else None)}
           for p, vs in losses.items()}
    for p, why in skipped.items():
        per[p] = {"status": why}
    if "fp32+scaler" in per:
        per["fp32+scaler"]["status"] = "CPU stand-in: fp32 under torch.amp.GradScaler('cpu'), fp16's bookkeeping"
    for p in skips:
        per[p]["scaler_skipped_steps"] = skips[p]
        per[p]["final_scale"] = learners[p].scaler.get_scale()
    min_steps = min(n_steps, 10)
    checks.add(f"lockstep training steps done (of {n_steps})", step >= min_steps, step, f">= {min_steps}")
    for p in precisions:
        checks.add(f"{p}: no NaN/inf loss", nonfinite[p] == 0, nonfinite[p], 0)
    tol = 0.1
    for p in precisions[1:]:
        d = abs(tail[p] - tail["fp32"]) if p in tail else math.inf
        checks.add(f"{p} tracks fp32: |mean loss of the last {k} steps - fp32's| (nats)", d <= tol, round(d, 4), tol)
    for p, n in skips.items():
        limit = max(5, int(0.1 * step))
        checks.add(f"{p}: GradScaler skipped steps", n <= limit, n, f"<= {limit}")
    figure = ", ".join(f"{p} {tail[p]:.3f}" for p in precisions if p in tail)
    figure = f"{step} steps, mean loss of the last {k}: {figure}" + "".join(
        f"; {p} skipped steps {n}" for p, n in skips.items()) + "".join(f"; {p} {w}" for p, w in skipped.items())
    return checks.result(figure, precisions=per, steps=step, lr=ctx["amp_lr"], sizes=S, vocab=len(vocab),
                         tf32=tf32_state(), **(gpu_info() if dev.type == "cuda" else {}), losses={p: [round(v, 4) for v in vs] for p, vs in losses.items()})


@contextlib.contextmanager
def warnings_ignored():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
