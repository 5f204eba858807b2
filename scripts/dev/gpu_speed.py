"""Part `speed` of gpu_check.py: scripts/dev/bench.py lm | clas | generate at full size, the `gpu` preset's bs
and seq_len: tokens/s, reviews/s, words/s and peak GPU memory, one subprocess each with a timeout."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from gpu_check_common import FULL, HERE, ROOT, TINY, Checks, cmd_failure, last_json, run_cmd


def find_bench() -> Path:
    """scripts/dev/bench.py beside this file."""
    return HERE / "bench.py"


def part_speed(ctx: dict) -> dict:
    """bench.py lm | clas | generate, each in a subprocess with a timeout; their JSON kept."""
    deadline = time.time() + ctx["budget"]
    tiny, dev = ctx["tiny"], ctx["device"]
    S = TINY if tiny else FULL
    bench = find_bench()
    has_json = '"--json"' in bench.read_text(encoding="utf-8")
    common = ["--device", dev, "--csv", ctx["corpus_csv"], "--cache-dir", ctx["cache_dir"]]
    common += ["--threads", "1"] if tiny else []
    model = ["--emb", S["emb"], "--hid", S["hid"], "--layers", S["layers"]]
    calls = [
        ("lm", ["lm", *model, "--bs", S["bs"], "--seq-len", S["seq_len"], "--max-vocab", S["vocab"],
                "--docs", 100 if tiny else 4000, "--steps", 2 if tiny else 30, "--warmup", 1 if tiny else 5,
                "--drop-mult", 0.3, "--lr", 2e-3] + (["--precision", "fp32"] if tiny else []), 45),
        ("clas", ["clas", *model, "--bs", S["clas_bs"], "--docs", 16 if tiny else 1000,
                  "--train-steps", 1 if tiny else 10] + (["--precisions", "fp32"] if tiny else []), 50),
        ("generate", ["generate", *model, "--vocab-size", S["vocab"], "--n-words", 5 if tiny else 40,
                      "--reps", 1 if tiny else 3] + (["--precisions", "fp32"] if tiny else []), 35),
    ]
    if not tiny:  # the fp32 step beside the preset's mixed precision, when time is left
        calls.append(("lm_fp32", calls[0][1] + ["--precision", "fp32"], 35))
    checks, runs, det = Checks(), {}, {"bench": str(bench.relative_to(ROOT)), "json_flag": has_json}
    for name, argv, cap in calls:
        left = deadline - time.time()
        if name == "lm_fp32" and left < cap:
            runs[name] = {"status": f"skipped: {left:.0f} s left in the part"}
            continue
        r = run_cmd([sys.executable, bench, *argv, *common] + (["--json"] if has_json else []),
                    min(cap, max(5.0, left)), ctx["env"])
        why = cmd_failure(r)
        out = last_json(r["tail"]) if why is None else None
        runs[name] = {"seconds": r["seconds"], "cmd": " ".join(r["cmd"][1:]), **({"error": why, "tail": r["tail"][-30:]}
                                                                               if why else {}), "result": out}
        if out is None and why is None:
            why = "no JSON result in its output"
        checks.add(f"bench.py {' '.join(str(a) for a in argv[:1])}{' fp32' if name == 'lm_fp32' else ''} ran",
                   why is None, why or f"{r['seconds']} s")
    rates, fig = {}, []
    lm = runs.get("lm", {}).get("result")
    if lm:
        rates.update(lm_tokens_per_s=lm["tokens_per_s"], lm_precision=lm["precision"])
        fig.append(f"LM {lm['tokens_per_s']:,.0f} tokens/s ({lm['precision']}, {lm['peak_memory_MiB']:,.0f} MiB)")
        checks.add("LM training tokens/s > 0 and the losses finite", lm["tokens_per_s"] > 0 and all(
            math.isfinite(v) for v in lm.get("losses", [])), lm["tokens_per_s"])
    lm32 = runs.get("lm_fp32", {}).get("result")
    if lm32:
        fig.append(f"fp32 {lm32['tokens_per_s']:,.0f}")
    cl = runs.get("clas", {}).get("result")
    if cl:
        inf = cl["inference"]
        best = "bf16" if "bf16" in inf else next(iter(inf))
        rates.update(clas_infer_reviews_per_s=inf[best]["reviews_per_s"], clas_infer_precision=best)
        fig.append("classifier " + ", ".join(f"{p} {r['reviews_per_s']:,.0f}" for p, r in inf.items()) + " reviews/s")
        if "training" in cl:
            rates["clas_train_reviews_per_s"] = cl["training"]["reviews_per_s"]
            fig.append(f"training {cl['training']['reviews_per_s']:,.0f} reviews/s (fp32)")
        checks.add("classifier inference reviews/s > 0", all(r["reviews_per_s"] > 0 for r in inf.values()),
                   {p: r["reviews_per_s"] for p, r in inf.items()})
    gen = runs.get("generate", {}).get("result")
    if gen:
        g = gen["generate"]
        rates["generate_words_per_s"] = {p: r["words_per_s"] for p, r in g.items()}
        fig.append("generate " + ", ".join(f"{p} {r['words_per_s']:,.0f}" for p, r in g.items()) + " words/s")
        checks.add("generation words/s > 0", all(r["words_per_s"] > 0 for r in g.values()), rates["generate_words_per_s"])
    peaks = {}
    for n, r in runs.items():
        o = r.get("result") or {}
        if "peak_memory_MiB" in o:
            peaks[n] = o["peak_memory_MiB"]
        for key in ("inference", "generate"):
            for p, v in (o.get(key) or {}).items():
                peaks[f"{n}_{p}"] = v.get("peak_memory_MiB")
        if "training" in o:
            peaks[f"{n}_training"] = o["training"].get("peak_memory_MiB")
    return checks.result("; ".join(fig) or "no figures", rates=rates, peak_memory_MiB=peaks, runs=runs, **det)
