"""ULMFiT in one call, sized by a time budget: both stages, both directions, the bag-of-words member, the ensemble.

    run_ulmfit("cpu-hour")            # what `python scripts/ulmfit.py --preset cpu-hour` does

1. Read and tokenize the texts (cached).
2. Measure this host (awdlstm/speed.py: a few steps of each model, side by side when two directions will train
   side by side) and plan the work to the budget (awdlstm/budget.py); print the plan with its expected minutes
   and the flags that repeat it; write it to the run folder's config.json. `plan_file` replays a recorded plan.
3. Train each direction: `finetune_lm`, then `train_classifier` (awdlstm/ulmfit.py), into lm-fwd/ and clas-fwd/
   (lm-bwd/, clas-bwd/). Two directions run as two processes at once, one core each (`python -m
   awdlstm.pipeline SPEC`); the backward one writes its output to bwd.out.
4. Fit the bag-of-words member on the classifier's training reviews (awdlstm/bow.py) into bow/.
5. Print each member's validation accuracy, `final validation accuracy:` of ULMFiT alone (the forward classifier,
   or forward + backward), and `ensemble validation accuracy:` of ULMFiT with bag-of-words (equal weights: the
   mean of the members' probabilities, nothing tuned on the validation reviews), and each stage's expected and
   actual minutes, and the scripts/predict.py command that classifies new texts with every member.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from awdlstm import budget, runs, speed
from awdlstm.bow import train_bow
from awdlstm.data.splits import sample, split_docs
from awdlstm.data.text_source import TextSource
from awdlstm.precision import host_kind
from awdlstm.predict import ensemble_accuracy
from awdlstm.tokenizers.corpus import select_docs
from awdlstm.ulmfit import finetune_lm, tokenize_texts, train_classifier

DIRS = ("fwd", "bwd")


def corpus_stats(lm_lengths: np.ndarray, clas_lengths: np.ndarray, is_valid, preset: str, seed: int
                 ) -> tuple[budget.CorpusStats, np.ndarray, np.ndarray]:
    """What the plan needs of the data, and the classifier's (train, valid) split as `train_classifier` draws it."""
    lm, clas = budget.LM_PRESETS[preset], budget.CLAS_PRESETS[preset]
    n_lm = len(lm_lengths) if lm.lm_docs <= 0 else min(lm.lm_docs, len(lm_lengths))
    rng = np.random.default_rng(seed)  # the classifier's first draws (ulmfit.train_classifier)
    train, valid = split_docs(is_valid, len(clas_lengths), clas.valid_pct, rng, clas.train_docs, clas.valid_docs)
    stats = budget.CorpusStats(n_lm, int(lm_lengths.sum() * n_lm / len(lm_lengths)), clas_lengths[train],
                               clas_lengths[valid], int(clas_lengths[train].sum() + clas_lengths[valid].sum()))
    return stats, train, valid


def train_direction(spec: dict) -> dict:
    """One direction (spec['backwards']): the language model, then the classifier from its encoder, in this
    process. Returns the two run folders, the figures and each stage's seconds."""
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    plan = budget.Plan.from_dict(spec["plan"])
    lm_recipe, clas_recipe = plan.recipes()
    source, progress = TextSource(**spec["source"]), spec.get("progress", True)
    settings = {"preset": plan.preset, "source": spec["source"], "plan": spec["plan"]}
    common = {"seed": spec["seed"], "cache_dir": spec.get("cache_dir"), "progress": progress, "settings": settings}
    t0 = time.time()
    lm = finetune_lm(source.read(labelled=False, progress=progress), lm_recipe, spec["lm_dir"], "cpu",
                     backwards=spec["backwards"], **common)
    t1 = time.time()
    clas = train_classifier(source.read(labelled=True, progress=progress), spec["lm_dir"], clas_recipe,
                            spec["clas_dir"], "cpu", **common)
    out = {"lm_dir": str(lm.run_dir), "clas_dir": str(clas.run_dir), "perplexity": lm.perplexity,
           "accuracy": clas.accuracy, "lm_s": round(t1 - t0, 1), "clas_s": round(time.time() - t1, 1)}
    if spec.get("result"):
        Path(spec["result"]).write_text(json.dumps(out))
    return out


def _run_side_by_side(specs: list[dict], root: Path) -> list[dict]:
    """The directions as processes at once (one core each); the first prints here, the others to <dir>.out."""
    procs, logs = [], []
    for i, spec in enumerate(specs):
        spec = {**spec, "result": str(root / f"{DIRS[i]}.result.json"), "progress": spec["progress"] and i == 0}
        out = None if i == 0 else open(root / f"{DIRS[i]}.out", "w")  # noqa: SIM115 (closed below)
        logs.append(out)
        procs.append(subprocess.Popen([sys.executable, "-m", "awdlstm.pipeline", json.dumps(spec)],
                                      stdout=out, stderr=subprocess.STDOUT if out else None))
        specs[i] = spec
    codes = [p.wait() for p in procs]
    for f in logs:
        if f:
            f.close()
    for spec, code in zip(specs, codes):
        if code != 0:
            raise RuntimeError(f"the {'backward' if spec['backwards'] else 'forward'} direction failed (exit status "
                               f"{code}; see {root / 'bwd.out'} and the run folders' log.txt)")
    return [json.loads(Path(s["result"]).read_text()) for s in specs]


def run_ulmfit(preset: str = "cpu", minutes: float | None = None, run_dir: str | Path | None = None, *,
               source: TextSource | None = None, seed: int = 42, overrides: dict | None = None,
               plan_file: str | Path | None = None, threads: int = 0, cache_dir: str | None = None,
               progress: bool = True, dry_run: bool = False) -> dict:
    """The whole recipe of `preset` within `minutes` (default: the preset's budget) on this host; see above.
    Returns the plan, each member's accuracy, the ensemble's and each stage's seconds (also in config.json);
    `dry_run`: only measure, plan, print and record the plan."""
    t_start = time.time()
    source = source or TextSource()
    overrides = dict(overrides or {})
    if plan_file:  # read first: a wrong --plan is said before any work
        saved = runs.read_config(Path(plan_file).parent if Path(plan_file).is_file() else plan_file)
        if not isinstance(saved.get("plan"), dict):
            raise ValueError(f"--plan {plan_file}: its config.json records no plan (not a scripts/ulmfit.py run)")
        plan = dataclasses.replace(budget.Plan.from_dict(saved["plan"]), **overrides)
    root = Path(run_dir or runs.new_run_dir("ulmfit"))
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"run folder {root} is not empty: give a new one (each stage's folder inside it can be "
                         "finished with its own script's --resume)")
    root.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    with runs.logged(root):
        print(host_kind())
        lm_texts = source.read(labelled=False, progress=progress)
        clas_texts = source.read(labelled=True, progress=progress)
        lm_corpus = tokenize_texts(lm_texts.texts, cache_dir, progress)
        clas_corpus = lm_corpus if lm_texts.texts == clas_texts.texts else tokenize_texts(clas_texts.texts,
                                                                                          cache_dir, progress)
        if plan_file:
            preset, speeds = plan.preset, None
            print(f"the plan recorded in {plan_file} (its expected minutes are those of the host that made it)")
        stats, train_idx, valid_idx = corpus_stats(np.diff(lm_corpus.offsets), np.diff(clas_corpus.offsets),
                                                   clas_texts.is_valid, preset, seed)
        if not plan_file:
            directions = overrides.get("directions", budget.DIRECTIONS[preset])
            read_len = overrides.get("read_len")
            print(f"measuring this host ({'two jobs side by side, ' if directions > 1 else ''}a few steps of each "
                  "model at the preset's size)...", flush=True)
            measured = (speed.measure_side_by_side(preset, directions, read_len) if directions > 1
                        else speed.measure(preset, threads=threads, read_len=read_len))
            bow_docs = sample(train_idx, 2000, np.random.default_rng(seed))
            measured["bow_s_tok"] = speed.measure_bow(*select_docs(clas_corpus.ids, clas_corpus.offsets, bow_docs))
            speeds = budget.Speeds(**measured)
            plan = budget.make_plan(preset, speeds, stats, minutes, time.time() - t_start, overrides)
        print(budget.describe(plan), flush=True)
        config = {"stage": "ulmfit", "preset": preset, "plan": plan.to_dict(), "flags": budget.flags(plan),
                  "speeds": dataclasses.asdict(speeds) if speeds else None, "seed": seed, "source": vars(source),
                  "host": host_kind(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        runs.save_config(root, config)
        if dry_run:  # the plan only: measured, printed and recorded
            return config

        specs = [{"plan": plan.to_dict(), "source": vars(source), "seed": seed, "backwards": d == "bwd",
                  "lm_dir": str(root / f"lm-{d}"), "clas_dir": str(root / f"clas-{d}"), "cache_dir": cache_dir,
                  "threads": 1 if plan.directions > 1 else threads, "progress": progress}
                 for d in DIRS[:plan.directions]]
        t_train = time.time()
        results = _run_side_by_side(specs, root) if len(specs) > 1 else [train_direction(specs[0])]
        members = {f"ULMFiT {'backward' if s['backwards'] else 'forward'}": r["clas_dir"]
                   for s, r in zip(specs, results)}
        t_bow = time.time()
        bow_s = 0.0
        if plan.bow:
            _, clas_recipe = plan.recipes()
            bow = train_bow(clas_texts, clas_corpus, train_idx, valid_idx, root / "bow",
                            settings={"preset": preset, "source": vars(source)})
            members["bag-of-words"] = str(bow.run_dir)
            bow_s = time.time() - t_bow
        ulmfit = ensemble_accuracy([members[k] for k in members if k.startswith("ULMFiT")])
        every = ensemble_accuracy(list(members.values()))
        actual = {"lm": max(r["lm_s"] for r in results), "clas": max(r["clas_s"] for r in results), "bow": bow_s,
                  "total": time.time() - t_start}
        print(f"validation accuracy of each member ({every['n_valid']} reviews):")
        for name, run in members.items():
            print(f"  {every['each'][run]:.4f}  {name}  {run}")
        print(f"final validation accuracy: {ulmfit['ensemble']:.4f}  (ULMFiT: "
              f"{' + '.join(k.split()[1] for k in members if k.startswith('ULMFiT'))})")
        if plan.bow:
            print(f"ensemble validation accuracy: {every['ensemble']:.4f}  (ULMFiT with bag-of-words, equal weights)")
        print("classify new texts with them: python scripts/predict.py "
              + " ".join(f"--model {run}" for run in members.values()) + " TEXT")
        print("minutes, expected / actual: " + ", ".join(
            f"{k} {plan.expected_s.get(k, 0) / 60:.1f} / {v / 60:.1f}" for k, v in actual.items())
            + f" (training started {(t_train - t_start) / 60:.1f} min in)")
        config["results"] = {"members": {k: every["each"][v] for k, v in members.items()},
                             "ulmfit_accuracy": ulmfit["ensemble"],
                             "ensemble_accuracy": every["ensemble"] if plan.bow else None,
                             "seconds": {k: round(v, 1) for k, v in actual.items()},
                             "directions": results}
        runs.save_config(root, config)
    return config


if __name__ == "__main__":  # one direction of a side-by-side run (see _run_side_by_side)
    train_direction(json.loads(sys.argv[1]))
