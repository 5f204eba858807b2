"""`--resume RUN_DIR` of the training scripts, and the fits of a ULMFiT stage run in order (chapter 10).

A training run saves `run_dir/last.pt` at the end of every epoch (atomically: a kill at any moment leaves
the previous complete one). `--resume RUN_DIR` reads the run's config.json (its flags, recipe and seed),
rebuilds the same data (the token cache makes this quick), loads last.pt, finishes the fit it was in, runs
the fits after it and saves as an uninterrupted run would: the final weights are the same, bit for bit,
on a CPU.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pipeline as P
from awdlstm import distributed as D
from awdlstm.train import FitInterrupted


def add_resume_flag(parser: argparse.ArgumentParser) -> None:
    """--resume RUN_DIR: finish an interrupted run with its own flags (the other flags are ignored)."""
    parser.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="finish the interrupted run in RUN_DIR from its last.pt, with the flags it was started "
                             "with (only --threads, --quiet and --device may differ)")


def resume_args(args: argparse.Namespace, stage: str) -> tuple[argparse.Namespace, dict | None]:
    """With --resume: the run's own flags from its config.json (and that config); else `args` and None.

    The run folder, --threads, --quiet and --device come from this command line (they do not change the
    numbers on a CPU; another device may).
    """
    if args.resume is None:
        return args, None
    saved, path = P.read_config(args.resume), Path(args.resume) / "config.json"
    if saved.get("stage") != stage or not isinstance(saved.get("args"), dict):
        raise ValueError(f"--resume {args.resume}: {path} is not the config of a {stage} run")
    own = {k: getattr(args, k) for k in ("threads", "quiet", "device")}
    unknown = [k for k in saved["args"] if not hasattr(args, k)]
    if unknown:
        raise ValueError(f"--resume {args.resume}: {path} has flags this script does not know: {unknown}")
    restored = argparse.Namespace(**{**vars(args), **saved["args"], **own, "resume": args.resume,
                                     "run_dir": str(args.resume), "preset": saved.get("preset")})
    return restored, saved


def resumed_config(config: dict, saved: dict | None) -> dict:
    """The new run's config.json; a resumed run keeps its start time and lists when it was resumed."""
    if saved is not None:
        config = {**config, "started": saved.get("started"),
                  "resumed": [*saved.get("resumed", []), time.strftime("%Y-%m-%d %H:%M:%S")]}
    return config


def resume_checkpoint(run_dir: Path, final: str) -> Path | None:
    """The checkpoint `--resume` continues from: `run_dir/last.pt`, or None (no epoch was completed: the run
    starts again from the beginning). A finished run (`final` written, last.pt removed) is an error.
    Temporary files of a save that was killed half-way are removed (the complete last.pt is untouched)."""
    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    last = run_dir / "last.pt"
    if last.is_file():
        return last
    if (run_dir / final).is_file():
        raise ValueError(f"--resume {run_dir}: the run is complete ({final} is saved); nothing to resume")
    print(f"{run_dir} has no last.pt (no epoch was completed): starting the run again")
    return None


def start_run(args: argparse.Namespace, saved: dict | None, folder: str, final: str,
              config: dict) -> tuple[Path, Path | None, dict]:
    """Open a training run: its folder (`--run-dir`, the resumed run's, or a new `runs/<folder>-...`; rank 0
    picks it and the other ranks learn its name), the checkpoint to resume from (None: from the start) and
    its config.json, written by rank 0. `final` is the file a finished run has saved (a finished run is no
    resume). Returns (run folder, checkpoint or None, config as written)."""
    run_dir = Path(D.broadcast_str(str(P.new_run_dir(args.run_dir, folder)) if D.is_main() else None))
    resume_from = resume_checkpoint(run_dir, final) if saved else None
    config = resumed_config(config, saved)
    if D.is_main():
        P.save_config(run_dir, config)
    return run_dir, resume_from, config


def run_fits(learn, fits: list[tuple[int, int, float | slice]], resume: Path | None = None) -> None:
    """The fits of a ULMFiT stage in order, each `(freeze_to, n_epoch, lr)`: `learn.freeze_to(n)` then
    `learn.fit_one_cycle(n_epoch, lr)` (the book's gradual unfreezing).

    `resume` (an end-of-epoch `last.pt`) restores weights, optimizer, frozen groups, RNG states and
    history, finishes the fit it was saved in, and runs the fits after it: the weights at the end equal
    those of an uninterrupted run, bit for bit, on a CPU.
    """
    try:
        first = 0
        if resume is not None:
            fit = learn.load(resume)
            k = learn.n_fits
            if not fit or fit.get("epoch") is None or not 1 <= k <= len(fits) or fit["n_epoch"] != fits[k - 1][1]:
                raise ValueError(f"{resume} is not an end-of-epoch checkpoint of this run's fits "
                                 f"(fit {k}, {fit.get('n_epoch') if fit else None} epochs; the recipe has "
                                 f"{[f[1] for f in fits]})")
            if fit["epoch"] < fit["n_epoch"]:  # else it is the fit's last epoch: go on with the next fit
                learn.fit_one_cycle(fit["n_epoch"], fit["lr_max"], start_epoch=fit["epoch"], moms=tuple(fit["moms"]))
            first = k
        for n, n_epoch, lr in fits[first:]:
            learn.freeze_to(n)
            learn.fit_one_cycle(n_epoch, lr)
    except FitInterrupted:  # Ctrl-C: the Learner saved interrupted.pt; the script resumes from last.pt
        raise FitInterrupted(f"Weights saved to {learn.run_dir / 'interrupted.pt'}. Finish the run with --resume "
                             f"{learn.run_dir} (from its last completed epoch, or from the start if there is none)."
                             ) from None
