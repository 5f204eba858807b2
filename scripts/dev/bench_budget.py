"""Calibrate the time-budget rule (awdlstm/budget.py): predicted against measured seconds of real, short stages.

    python scripts/dev/bench_budget.py --preset cpu --lm-docs 2000 --train-docs 2000 --json
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 taskset -c 0 python scripts/dev/bench_budget.py --threads 1

Measures this host as scripts/ulmfit.py does (awdlstm/speed.py), predicts the seconds of a language model on
`--lm-docs` reviews (one epoch at the preset's size) and of a classifier on `--train-docs` reviews (the
preset's stages), trains both for real (awdlstm/ulmfit.py) and prints both figures and their ratio per stage.
The AVX2 line above makes oneDNN and ATen use AVX2 kernels only, as on a CPU without AVX-512 (a real AVX2 host
was 1.9x slower still: the plan uses the measurement on the host itself, never these flags).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from awdlstm import budget, speed
from awdlstm.data.splits import split_docs
from awdlstm.data.text_source import TextSource
from awdlstm.precision import host_kind
from awdlstm.runs import read_config
from awdlstm.ulmfit import finetune_lm, tokenize_texts, train_classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=budget.PLANNED, default="cpu")
    ap.add_argument("--lm-docs", type=int, default=2000)
    ap.add_argument("--train-docs", type=int, default=2000)
    ap.add_argument("--valid-docs", type=int, default=500)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = TextSource().read(labelled=True, progress=False)
    corpus = tokenize_texts(texts.texts, progress=False)
    t0 = time.time()
    s = budget.Speeds(**speed.measure(args.preset, threads=args.threads), bow_s_tok=0.0)
    measure_s = time.time() - t0
    plan = dataclasses.replace(budget.reference(args.preset), lm_epochs=1, lm_docs=args.lm_docs,
                               precision=s.precision, bow=False)
    lm_r, clas_r = plan.recipes()
    clas_r = dataclasses.replace(clas_r, train_docs=args.train_docs, valid_docs=args.valid_docs)
    lengths = np.diff(corpus.offsets)
    train, valid = split_docs(texts.is_valid, len(texts), clas_r.valid_pct, np.random.default_rng(42),
                              args.train_docs, args.valid_docs)
    stats = budget.CorpusStats(len(lengths), int(lengths.sum()), lengths[train], lengths[valid], 0)
    want = budget.expected_seconds(plan, s, stats)
    with tempfile.TemporaryDirectory() as d:
        finetune_lm(texts, lm_r, Path(d) / "lm", progress=False, n_samples=0)
        lm_cfg = read_config(Path(d) / "lm")["results"]
        train_classifier(texts, Path(d) / "lm", clas_r, Path(d) / "clas", progress=False)
        clas_cfg = read_config(Path(d) / "clas")["results"]
    got = {"lm": lm_cfg["total_time_s"], "clas": clas_cfg["total_time_s"]}
    out = {"host": host_kind(), "preset": args.preset, "measure_s": round(measure_s, 1),
           "speeds": dataclasses.asdict(s), "lm_tokens": lm_cfg["n_tokens"],
           **{f"{k}_predicted_s": want[k] for k in got}, **{f"{k}_measured_s": v for k, v in got.items()},
           **{f"{k}_measured_over_predicted": round(v / want[k], 3) for k, v in got.items()}}
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
