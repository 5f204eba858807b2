"""Checkpoints and random-number state: save a training run, resume it bit for bit, repeat it with a seed.

A checkpoint is one `torch.save`d dict of tensors, numbers, strings, lists and dicts only (so that
`torch.load(weights_only=True)` reads it and loading never runs code from the file):

    {"model": state_dict, "digest": tensor_digest(state_dict), "opt": Adam.state_dict(),
     "fit": {...position in the schedule...}, "rng": rng_state(), "history": [...]}

It is written atomically: to a temporary file in the same folder, then `os.replace`d over the old one, so an
interrupted save never leaves half a checkpoint behind.

`Learner.save` / `Learner.load` write and read it (`learner_state`, `restore_learner`); `Learner.resume` makes
the run's calls again, and a `Replay` tells each `fit_one_cycle` where the checkpoint left it.
"""
from __future__ import annotations

import os
import random
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from awdlstm.checkpoint import check_digest, load_by_name, tensor_digest, torch_load
from awdlstm.precision import resolve_precision

if TYPE_CHECKING:
    from torch import nn

    from awdlstm.train import Learner


class FitInterrupted(KeyboardInterrupt):
    """Ctrl-C during a fit, after the state was saved; the message says where and how to resume."""


class NonFiniteLoss(RuntimeError):
    """Too many consecutive NaN/inf losses; the last good checkpoint was kept."""


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) so a CPU run repeats exactly.

    `deterministic=True` also asks CUDA for deterministic kernels (cuDNN, cuBLAS), slower but repeatable.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def rng_state() -> dict:
    """Every global random state (Python, numpy, torch CPU and CUDA) as tensors, ints, floats and lists."""
    version, mt, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": {"version": version, "mt": list(mt), "gauss": gauss},
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state()` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["mt"]), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with `torch.load(weights_only=True)`; a clear error if it is missing or not ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch_load(path, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{path} is not an awdlstm checkpoint (no 'model' entry)")
    check_digest(path, ckpt["model"], ckpt.get("digest"))
    return ckpt


def learner_state(learn: Learner, fit: dict | None = None) -> dict:
    """What `Learner.save` writes: model, optimizer, schedule position (`fit`), RNG states and history."""
    sd = learn.model.state_dict()
    ckpt = {"model": sd, "digest": tensor_digest(sd), "opt": learn.opt.state_dict(), "fit": fit or {},
            "smooth": {"count": learn.smooth.count, "val": learn.smooth.val.clone()}, "n_fits": learn.n_fits,
            "train_epochs": learn.train_epochs, "rng": rng_state(), "history": learn.history,
            "batches": learn.batches, "precision": learn.precision.name,
            "cfg": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(learn.cfg).items()}}
    if learn.scaler is not None:
        ckpt["scaler"] = learn.scaler.state_dict()
    return ckpt


def restore_learner(learn: Learner, path: str | Path, with_opt: bool = True) -> dict:
    """What `Learner.load` does: restore a checkpoint written by `learner_state`; returns its `fit` entry."""
    ckpt = load_checkpoint(path, map_location=learn.device)
    load_by_name(learn.model, ckpt["model"], source=str(path))  # another architecture: a one-line error
    if with_opt:
        learn.opt.load_state_dict(ckpt["opt"])
        if learn.scaler is not None and "scaler" in ckpt:
            learn.scaler.load_state_dict(ckpt["scaler"])
    learn.history, learn.batches, learn.n_fits = ckpt["history"], ckpt["batches"], ckpt["n_fits"]
    learn.train_epochs = ckpt["train_epochs"]
    learn.smooth.count, learn.smooth.val = ckpt["smooth"]["count"], ckpt["smooth"]["val"].cpu()
    saved = ckpt.get("precision", learn.precision.name)
    if learn.cfg.precision == "auto" and saved != learn.precision.name:  # 'auto' timed otherwise this time:
        try:  # go on in the run's own precision, so that a resumed run stays bit for bit the same
            learn.precision = resolve_precision(saved, learn.device)
        except ValueError as e:
            warnings.warn(f"{path} was trained in {saved}, which this machine cannot run ({e}); it goes on in "
                          f"{learn.precision.name}", stacklevel=3)
    set_rng_state(ckpt["rng"])
    return ckpt["fit"]


@dataclass
class Replay:
    """A run being resumed (`Learner.resume`): its calls are made again, and each `fit_one_cycle` asks
    `next_fit` where to start. The fits the checkpoint had finished are skipped, the one it was saved in goes
    on from its next epoch; then `reached` is True and the run goes on as usual."""

    path: str
    fit: dict  # the checkpoint's `fit` entry: fit number, n_epoch, lr_max, moms, epochs done
    calls: int = 0
    reached: bool = False

    def __post_init__(self):
        if not self.fit or self.fit.get("epoch") is None:
            raise ValueError(f"{self.path} is not an end-of-epoch checkpoint of a fit; nothing to resume")

    def next_fit(self, n_epoch: int, lrs: list[float]) -> tuple[int | None, tuple | None]:
        """(epoch to start from, momentums) for the run's next fit of `n_epoch` epochs at `lrs`, or (None, None)
        to skip it."""
        fit = self.fit
        self.calls += 1
        if self.calls < fit["fit"]:
            return None, None  # finished before the checkpoint was saved
        self.reached = True
        if n_epoch != fit["n_epoch"] or lrs != list(fit["lr_max"]):
            raise ValueError(f"{self.path} was saved in fit {fit['fit']} ({fit['n_epoch']} epochs at lr "
                             f"{fit['lr_max']}), but the run's fit {fit['fit']} now asks for {n_epoch} epochs at lr "
                             f"{lrs}: resume with the run's own recipe")
        if fit["epoch"] >= n_epoch:
            return None, None  # its last epoch was done: go on with the next fit
        return fit["epoch"], tuple(fit["moms"])

    def never_reached(self) -> ValueError:
        """The error for a checkpoint whose fit the run's calls never reached: it was not this run's."""
        return ValueError(f"{self.path} was saved in fit {self.fit['fit']}, but the run has only {self.calls} "
                          "fits: it is not an end-of-epoch checkpoint of this run's recipe")


def stopped(run_dir: Path | None, why: str) -> NonFiniteLoss:
    """The error that stops a diverging run: why, the last good checkpoint (never overwritten), what to try."""
    last = run_dir / "last.pt" if run_dir else None
    return NonFiniteLoss(f"{why}: training stopped. Last good checkpoint: "
                         f"{last if last and last.exists() else 'none'}. "
                         "Try a lower learning rate, gradient clipping (clip=...) or precision='fp32'.")


def check_finite(model: nn.Module, epoch: int, run_dir: Path | None) -> None:
    """Stop before an epoch's checkpoint would replace the last good one with NaN/inf weights."""
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise stopped(run_dir, f"non-finite weights ({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}) "
                               f"after epoch {epoch}")


def save_interrupted(learn: Learner, fit: dict) -> None:
    """Ctrl-C during `fit`: save `run_dir/interrupted.pt` and raise `FitInterrupted` saying how to resume."""
    path = learn.save(learn.run_dir / "interrupted.pt", fit={**fit, "epoch": None})
    last = learn.run_dir / "last.pt"
    done = [r for r in learn.history if r["fit"] == fit["fit"]]
    msg = (f"Interrupted: weights saved to {path}. "
           + (f"Resume the fit from its last completed epoch ({done[-1]['epoch']}) with learner.resume('{last}') "
              "and the same calls again." if done and last.exists()
              else "No epoch of this fit was completed; start it again."))
    tqdm.write(msg)
    raise FitInterrupted(msg) from None
