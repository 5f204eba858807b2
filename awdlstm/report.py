"""What a training run shows and leaves behind: fastai's epoch table, the history files and the loss curves.

The table has fastai's console layout (fastprogress): each header is padded to at least 8 characters and
followed by two spaces; each value (6 decimals, the time as mm:ss) is padded to its header's width + 2:

    epoch     train_loss  valid_loss  accuracy  perplexity  time
    0         4.120112    3.912391    0.299221  50.010803   09:17
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from awdlstm.tokenizers.atomic import atomic_write, write_text

PLOT_HINT = "matplotlib is not installed: no plot written (install the extra: pip install 'awdlstm[plot]')"


def format_time(seconds: float) -> str:
    """Seconds as fastai prints them: `mm:ss`, or `h:mm:ss` from one hour on."""
    t = int(seconds)
    h, m, s = t // 3600, (t // 60) % 60, t % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class EpochTable:
    """Prints one row per epoch in fastai's console layout (through `tqdm.write`, so bars stay intact)."""

    def __init__(self, names: list[str], printer=tqdm.write):
        self.names = [n + " " * (8 - len(n)) if len(n) < 8 else n for n in names]
        self.printer = printer
        self.printer("  ".join(self.names))

    def row(self, values: list) -> str:
        """Format and print one row: ints as-is, floats with 6 decimals, strings (the time) unchanged."""
        cells = [f"{v:.6f}" if isinstance(v, float) else str(v) for v in values]
        text = "".join(c + " " * (2 + len(n) - len(c)) for c, n in zip(cells, self.names, strict=True))
        self.printer(text)
        return text


def write_history(run_dir: str | Path, epochs: list[dict], batches: dict[str, list]) -> None:
    """Write the per-epoch rows to `history.csv` and everything (with per-batch loss/lr) to `history.json`."""
    run_dir = Path(run_dir)
    fields: list[str] = []
    for row in epochs:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(epochs)
    write_text(run_dir / "history.csv", buf.getvalue())
    write_text(run_dir / "history.json", json.dumps({"epochs": epochs, "batches": batches}, indent=1))


_hinted = False


def _figure():
    """A matplotlib Figure, or None (the hint how to get plots is printed once per process)."""
    global _hinted
    try:
        from matplotlib.figure import Figure
    except ImportError:
        if not _hinted:
            tqdm.write(PLOT_HINT)
            _hinted = True
        return None
    return Figure(figsize=(10, 4))


def plot_history(run_dir: str | Path, epochs: list[dict], batches: dict[str, list]) -> Path | None:
    """Plot the smoothed training loss per batch, validation loss and metrics per epoch to `curves.png`.

    Returns the path, or None (with a hint how to get it) when matplotlib is missing.
    """
    fig = _figure()
    if fig is None:
        return None
    ax_loss, ax_met = fig.subplots(1, 2)
    ax_loss.plot(batches["iter"], batches["loss"], label="train (smoothed)")
    valid = [(r["iter"], r["valid_loss"]) for r in epochs if r.get("valid_loss") is not None]
    if valid:
        ax_loss.plot(*zip(*valid, strict=True), "o-", label="valid")
    ax_loss.set_xlabel("batches")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    for name in ("accuracy", "perplexity"):
        pts = [(i, r[name]) for i, r in enumerate(epochs) if r.get(name) is not None]
        if pts:
            ax = ax_met if name == "accuracy" else ax_met.twinx()
            ax.plot(*zip(*pts, strict=True), "o-", color="C0" if name == "accuracy" else "C1", label=name)
            ax.set_ylabel(name)
    ax_met.set_xlabel("epoch (all fits)")
    fig.tight_layout()
    path = Path(run_dir) / "curves.png"
    with atomic_write(path, "wb") as f:  # a run killed while plotting keeps the previous plot
        fig.savefig(f, format="png")
    return path


def plot_lr_find(path: str | Path, lrs: list[float], losses: list[float], points: dict[str, tuple]) -> Path | None:
    """The learning-rate finder's plot: loss against lr (log scale) with the suggestions marked."""
    fig = _figure()
    if fig is None:
        return None
    ax = fig.subplots()
    ax.plot(lrs, losses)
    ax.set_xscale("log")
    ax.set_xlabel("Learning Rate")
    ax.set_ylabel("Loss")
    for i, (name, (lr, loss)) in enumerate(points.items()):
        ax.plot(lr, loss, "o", color=f"C{i + 1}", label=name)
    if points:
        ax.legend(loc="best")
    with atomic_write(path, "wb") as f:  # a run killed while plotting keeps the previous plot
        fig.savefig(f, format="png")
    return Path(path)


class SmoothLoss:
    """fastai's `train_loss`: exponential moving average of the batch losses (beta 0.98), bias-corrected.

    Kept in a float32 tensor and updated with `torch.lerp`, as fastai's `AvgSmoothLoss`, so the printed
    values agree to the last digit.
    """

    def __init__(self, beta: float = 0.98):
        self.beta, self.count, self.val = beta, 0, torch.tensor(0.0)

    def add(self, loss: float) -> float:
        """Add one batch loss and return the smoothed value."""
        self.count += 1
        self.val = torch.lerp(torch.tensor(loss, dtype=torch.float32), self.val, self.beta)
        return self.value

    @property
    def value(self) -> float:
        return (self.val / (1 - self.beta**self.count)).item() if self.count else math.nan
