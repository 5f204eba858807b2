"""This host's speed at a preset's size: the measurement a time budget is planned from (awdlstm/budget.py).

A few training steps of the language model (at the preset's vocab and at half of it: the decoder's cost is
linear in the vocab) and of the classifier (head only, and all layers), one validation batch of each, timed
in the precision the run will use: the `Learner` resolves 'auto' as in training, timing a step in fp32 and in
bf16 on a CPU with native bf16 (awdlstm/precision.py). The batches are random token ids of the real shapes: an
LSTM's time does not depend on which tokens it reads. The bag-of-words baseline is timed on a slice of the
real reviews. Each timing is the fastest of a few steps after one untimed step (oneDNN builds its kernels then).

`python -m awdlstm.speed '{"preset": "cpu-hour"}'` prints the same as one JSON line: scripts/ulmfit.py starts two
of them at once to measure the two directions' speed side by side, as they will train.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import torch

from awdlstm.baseline import ngram_features
from awdlstm.classifier import TextClassifier
from awdlstm.model import LanguageModel, clas_config, lm_config
from awdlstm.recipes import CLAS_PRESETS, LM_PRESETS, ClasRecipe, LMRecipe
from awdlstm.train import Learner, TrainConfig


def _fastest_s(fn, steps: int) -> float:
    """The fastest of `steps` timed calls after an untimed one (kernels are built on the first call): the
    fastest, as precision.time_bf16_speedup keeps, because a busy machine only ever adds time (the median of
    2-3 steps measured 0.45-1.06x of real stages on a 2-core host loaded by other jobs)."""
    fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure_lm(r: LMRecipe, device: torch.device, steps: int = 4, vocab: int | None = None) -> dict:
    """Seconds per token of language-model training at vocab `vocab` (default: the recipe's max_vocab) and at
    half of it, of validation, and the precision 'auto' chose."""
    vocab = vocab or r.max_vocab
    gen = torch.Generator().manual_seed(0)
    out, precision = {}, r.precision
    for v, key in ((vocab, "lm_s_tok"), (vocab // 2, "lm_s_tok_half")):
        x = torch.randint(v, (r.bs, r.seq_len + 1), generator=gen)
        batches = [(x[:, :-1], x[:, 1:])]
        torch.manual_seed(0)
        model = LanguageModel(v, lm_config(emb_sz=r.emb_sz, n_hid=r.n_hid, n_layers=r.n_layers,
                                           drop_mult=r.drop_mult))
        learn = Learner(model, batches, batches, metrics=("accuracy",), device=device,
                        cfg=TrainConfig(wd=r.wd, precision=precision, seed=0, progress=False))
        precision = learn.precision.name  # 'auto' resolved (and timed) once, on the full vocab
        out.setdefault("precision", precision)
        out[key] = _fastest_s(lambda learn=learn, b=batches: learn.train_batch(*b[0]), steps) / x[:, 1:].numel()
        if key == "lm_s_tok":
            out["lm_eval_s_tok"] = _fastest_s(lambda learn=learn, b=batches: learn.validate(b), steps) / x[:, 1:].numel()
    return {**out, "lm_vocab": vocab}


def measure_clas(r: ClasRecipe, lm: LMRecipe, device: torch.device, read_len: int, steps: int = 3,
                 vocab: int | None = None) -> dict:
    """Seconds per token of classifier training (the encoder frozen; all layers) and of validation, on
    batches of `read_len` tokens per review."""
    vocab = vocab or lm.max_vocab
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(2, vocab, (r.bs, read_len), generator=gen)  # no padding: ids from 2 on
    y = torch.randint(2, (r.bs,), generator=gen)
    batches = [(x, y)]
    torch.manual_seed(0)
    cfg = clas_config(emb_sz=lm.emb_sz, n_hid=lm.n_hid, n_layers=lm.n_layers, drop_mult=r.drop_mult)
    model = TextClassifier(vocab, 2, cfg, bptt=r.seq_len, max_len=read_len)
    learn = Learner(model, batches, batches, metrics=("accuracy",), device=device,
                    cfg=TrainConfig(wd=r.wd, precision=r.precision, seed=0, progress=False))
    n = x.numel()
    learn.freeze()
    head = _fastest_s(lambda: learn.train_batch(x, y), steps) / n
    learn.unfreeze()
    full = _fastest_s(lambda: learn.train_batch(x, y), steps) / n
    return {"clas_head_s_tok": head, "clas_s_tok": full,
            "clas_eval_s_tok": _fastest_s(lambda: learn.validate(batches), steps) / n}


# Features of the whole corpus took 1.8x the slice's time per token (sorting 20M n-gram keys, not 2M), and the
# fit (L-BFGS over every n-gram's weight) 0.4-1.0x the features' time (docs/results.md: 12.9 s against 32.6 s idle; 187 s
# against 179 s on a loaded 2-core host): timed on a slice the fit would be all per-iteration overhead.
BOW_SCALE = 1.8 * 1.7


def measure_bow(ids: np.ndarray, offsets: np.ndarray, n_docs: int = 2000, ngrams: int = 3) -> float:
    """Seconds per token of the bag-of-words member: its n-gram features timed on the first `n_docs`
    documents, scaled by BOW_SCALE to the whole corpus, the fit and the predictions."""
    n = min(n_docs, len(offsets) - 1)
    ids, offs = ids[:offsets[n]], offsets[:n + 1]
    t0 = time.perf_counter()
    ngram_features(ids, offs, ngrams, np.arange(n))
    return (time.perf_counter() - t0) * BOW_SCALE / max(1, int(offs[-1]))


def measure(preset: str, device: str = "cpu", threads: int = 0, read_len: int | None = None) -> dict:
    """The language model's and the classifier's speeds (`measure_lm`, `measure_clas`) at `preset`'s size."""
    if threads:
        torch.set_num_threads(threads)
    lm, clas = LM_PRESETS[preset], CLAS_PRESETS[preset]
    read_len = read_len or abs(clas.max_tokens) or clas.max_len
    dev = torch.device(device)
    return {**measure_lm(lm, dev), **measure_clas(clas, lm, dev, read_len)}


def measure_side_by_side(preset: str, jobs: int, read_len: int | None = None) -> dict:
    """`measure` in `jobs` processes at once, one thread each, as the directions will train: the slowest
    process's figure of each kind."""
    spec = json.dumps({"preset": preset, "threads": 1, "read_len": read_len})
    procs = [subprocess.Popen([sys.executable, "-m", "awdlstm.speed", spec], stdout=subprocess.PIPE, text=True)
             for _ in range(jobs)]
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"measuring this host's speed failed (exit status {p.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    merged = {k: max(r[k] for r in results) if isinstance(results[0][k], float) else results[0][k]
              for k in results[0]}
    return {**merged, "jobs": jobs}


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(measure(args["preset"], threads=args.get("threads", 0), read_len=args.get("read_len"))))
