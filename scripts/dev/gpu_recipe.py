"""Part `recipe` of gpu_check.py: the `gpu` preset from random weights, sized to the part's budget.
scripts/finetune_lm.py for as many epochs (and documents) as fit (planned from the speed part's rates), then
scripts/train_classifier.py's gradual-unfreezing stages: time per epoch, perplexity, validation accuracy."""
from __future__ import annotations

import contextlib
import math
import shutil
import sys
import time
from pathlib import Path

from gpu_check_common import ROOT, Checks, cmd_failure, read_json, run_cmd

ASSUMED = {"lm_tokens_per_s": 50_000, "clas_train_reviews_per_s": 200, "clas_infer_reviews_per_s": 800}
SCRIPT_OVERHEAD_S = 25  # a script's start, data, model, saving, samples and plots, besides its epochs


def plan_lm(seconds: float, n_docs: int, n_tokens: int, tokens_per_s: float, valid_pct: float = 0.1,
            max_epochs: int = 10) -> dict:
    """--lm-docs and --epochs for finetune_lm.py so that 1 frozen + `epochs` unfrozen epochs take about
    `seconds` at `tokens_per_s` (training; validation at 3x): all documents when two epochs fit, else fewer."""
    epoch_all = n_tokens * (1 - valid_pct) / tokens_per_s + n_tokens * valid_pct / (3 * tokens_per_s)
    if 2 * epoch_all <= seconds:
        epochs = int(min(max_epochs, max(1, seconds // epoch_all - 1)))
        return {"lm_docs": 0, "epochs": epochs, "planned_epoch_s": round(epoch_all, 1)}
    docs = max(min(n_docs, 200), int(n_docs * seconds / (2 * epoch_all)))
    return {"lm_docs": min(docs, n_docs), "epochs": 1, "planned_epoch_s": round(epoch_all * docs / n_docs, 1)}


def plan_clas(seconds: float, n_train: int, n_valid: int, train_rate: float, infer_rate: float,
              epoch_equiv: float = 4.0, n_valid_passes: int = 6) -> dict:
    """--train-docs and --valid-docs so that the gpu preset's stages (1+1+1+2 epochs; the frozen ones are
    cheaper: about `epoch_equiv` full epochs) and `n_valid_passes` validations take about `seconds`."""
    valid = int(min(n_valid, max(min(n_valid, 200), 0.25 * seconds * infer_rate / n_valid_passes)))
    left = seconds - n_valid_passes * valid / infer_rate
    train = int(min(n_train, max(min(n_train, 256), left * train_rate / epoch_equiv)))
    return {"train_docs": train if train < n_train else 0, "valid_docs": valid if valid < n_valid else 0,
            "planned_train_docs": train, "planned_valid_docs": valid}


def part_recipe(ctx: dict) -> dict:
    """finetune_lm.py --preset gpu, then train_classifier.py --preset gpu, sized to the part's budget."""
    import numpy as np

    from awdlstm.data.sources import imdb_embedded
    from awdlstm.tokenizers.corpus import tokenize_corpus
    t0 = time.time()
    deadline = t0 + ctx["budget"]
    tiny, dev = ctx["tiny"], ctx["device"]
    runs = Path(ctx["work"]) / "runs"
    lm_dir, clas_dir = runs / "lm", runs / "clas"
    for d in (lm_dir, clas_dir):  # a reused --work-dir: start afresh
        shutil.rmtree(d, ignore_errors=True)
    common = ["--device", dev, "--seed", "42", "--csv", ctx["corpus_csv"], "--cache-dir", ctx["cache_dir"], "--quiet"]
    common += ["--preset", "tiny", "--threads", "1"] if tiny else ["--preset", "gpu"]
    texts = imdb_embedded(ctx["corpus_csv"])
    corpus = tokenize_corpus(texts.texts, cache_dir=ctx["cache_dir"], progress=False)  # cached by the parts before
    n_docs, n_tokens = len(corpus), int(corpus.offsets[-1])
    is_valid = np.asarray(texts.is_valid)
    speed = (ctx.get("previous", {}).get("speed") or {}).get("details", {}).get("rates", {})
    rates = {k: speed.get(k) or v for k, v in ASSUMED.items()}
    assumed = [k for k in ASSUMED if not speed.get(k)]
    det = {"corpus_docs": n_docs, "corpus_tokens": n_tokens, "rates": rates,
           "rates_assumed": assumed, "script_overhead_s": SCRIPT_OVERHEAD_S}
    checks = Checks()

    lm_seconds = 0.42 * (deadline - time.time()) - SCRIPT_OVERHEAD_S
    plan = plan_lm(lm_seconds, n_docs, n_tokens, 0.8 * rates["lm_tokens_per_s"])
    if tiny:  # the dry run: the same flags, at the tiny preset's size
        plan = {**plan, "lm_docs": min(plan["lm_docs"] or n_docs, 40), "epochs": 1}
    det["lm_plan"] = {"seconds": round(lm_seconds, 1), **plan}
    lm_flags = ["--pretrained", "none", "--lm-docs", plan["lm_docs"], "--epochs", plan["epochs"], "--n-samples", "2"]
    lm_flags += ["--n-words", "5"] if tiny else []
    clas_min = 20 if tiny else 60
    r = run_cmd([sys.executable, ROOT / "scripts" / "finetune_lm.py", *common, "--run-dir", lm_dir, *lm_flags],
                max(5.0, deadline - time.time() - clas_min), ctx["env"])
    why = cmd_failure(r)
    det["lm_run"] = {"seconds": r["seconds"], "cmd": " ".join(r["cmd"][1:]), **({"error": why, "tail": r["tail"][-40:]}
                                                                               if why else {})}
    lm = _run_summary(lm_dir)
    det["lm"] = lm
    ok = why is None and lm.get("perplexity") is not None and math.isfinite(lm["perplexity"])
    checks.add("finetune_lm.py --preset " + ("tiny" if tiny else "gpu") + " finished, finite perplexity", ok,
               why or lm.get("perplexity"))
    if ok and lm.get("epoch_times_s"):
        per_epoch = float(np.median(lm["epoch_times_s"]))
        train_tokens = n_tokens * (lm.get("n_docs") or n_docs) / n_docs * 0.9
        det["lm"]["tokens_per_s_in_run"] = round(train_tokens / per_epoch)
        # The book's LM reads 100,000 IMDb reviews (train + test + unsup): 4x these 25,000, about 12 min/epoch there.
        det["lm"]["projected_min_per_epoch_100k_reviews"] = round(4 * n_tokens * 0.9 / (train_tokens / per_epoch) / 60, 2)
    if not ok:
        return checks.result(f"LM run failed: {why or 'no perplexity'}", **det)
    if ctx.get("report"):  # into the JSON now: a run killed during the classifier keeps the LM's figures
        ctx["report"]({**checks.result(f"LM done ({r['seconds']} s); the classifier is running", **det),
                       "status": "running"})

    n_train, n_valid = int((~is_valid).sum()), int(is_valid.sum())
    clas_seconds = deadline - time.time() - SCRIPT_OVERHEAD_S - 10
    plan = plan_clas(clas_seconds, n_train, n_valid, 0.8 * rates["clas_train_reviews_per_s"],
                     0.8 * rates["clas_infer_reviews_per_s"])
    if tiny:
        plan = {**plan, "train_docs": min(plan["train_docs"] or n_train, 48),
                "valid_docs": min(plan["valid_docs"] or n_valid, 24)}
    det["clas_plan"] = {"seconds": round(clas_seconds, 1), **plan}
    clas_flags = ["--train-docs", plan["train_docs"], "--valid-docs", plan["valid_docs"]]
    r = run_cmd([sys.executable, ROOT / "scripts" / "train_classifier.py", *common, "--valid-col", "is_valid",
                 "--encoder", lm_dir, "--run-dir", clas_dir, *clas_flags], max(5.0, deadline - time.time()), ctx["env"])
    why = cmd_failure(r)
    det["clas_run"] = {"seconds": r["seconds"], "cmd": " ".join(r["cmd"][1:]),
                       **({"error": why, "tail": r["tail"][-40:]} if why else {})}
    cl = _run_summary(clas_dir)
    det["clas"] = cl
    acc = cl.get("accuracy")
    checks.add("train_classifier.py finished with a validation accuracy", why is None and acc is not None, why or acc)
    if ctx["full_corpus"] and not tiny:
        checks.add("validation accuracy from random weights above chance", acc is not None and acc > 0.65, acc, "> 0.65")
    lm_epoch = lm.get("epoch_times_s") or []
    figure = (f"LM {len(lm_epoch)} epochs of {float(np.median(lm_epoch)) if lm_epoch else float('nan'):.1f} s "
              f"(perplexity {lm.get('perplexity', float('nan')):.1f}); classifier "
              f"{cl.get('n_train')} reviews, stages {len(cl.get('epoch_times_s') or [])} epochs, "
              f"accuracy {acc if acc is not None else float('nan'):.4f} on {cl.get('n_valid')} reviews")
    return checks.result(figure, **det)


def _run_summary(run_dir: Path) -> dict:
    """A run folder's results (config.json) and its per-epoch rows (history.json)."""
    out: dict = {"run_dir": str(run_dir)}
    with contextlib.suppress(OSError, ValueError):
        out.update(read_json(run_dir / "config.json").get("results", {}))
    with contextlib.suppress(OSError, ValueError):
        rows = read_json(run_dir / "history.json")["epochs"]
        out["epochs"] = rows
        out["epoch_times_s"] = [round(r["time"], 2) for r in rows]
    return out
