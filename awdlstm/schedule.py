"""The 1cycle schedule (chapter 13, "1cycle Training") and discriminative learning rates (chapter 5,
"Discriminative Learning Rates"), as chapter 10's `fit_one_cycle(n, slice(lo, hi))` uses them.

`fit_one_cycle` warms the learning rate up from `lr_max/div` to `lr_max` with half a cosine over the first
`pct_start` of training, then anneals it with another half cosine down to `lr_max/div_final`; the momentum
(Adam's beta1) does the opposite: 0.95 -> 0.85 -> 0.95 (0.8 -> 0.7 -> 0.8 for text models).

The values equal fastai 2.8's step by step, including two details of its arithmetic:
* the phase boundaries live in a float32 tensor, so the position inside a phase is computed in float32;
* the training progress `pct_train` is accumulated with `+= 1/(n_iter*n_epoch)` after every batch
  (see `OneCycle.pct_train`), not computed as `step/total`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def sched_cos(start: float, end: float, pos: float) -> float:
    """Half a cosine from `start` (pos=0) to `end` (pos=1). `sched_cos(1., 0., 0.5) == 0.5`."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def combined_cos(pct: float, start: float, middle: float, end: float):
    """Return `f(pos)`: cosine `start -> middle` over `[0, pct]`, then `middle -> end` over `[pct, 1]`.

    Example: `combined_cos(0.25, 1e-4, 1e-2, 1e-7)(0.25) == 1e-2` (the peak of the 1cycle policy).
    """
    # fastai's combine_scheds: cumulative phase boundaries [0, pct, 1] in float32.
    bounds = torch.cumsum(torch.tensor([0.0, pct, 1 - pct]), 0)  # float32
    phases = [(start, middle), (middle, end)]

    def schedule(pos: float) -> float:
        idx = min(int((pos >= bounds).nonzero().max()), 1)
        in_phase = ((pos - bounds[idx]) / (bounds[idx + 1] - bounds[idx])).item()  # float32 arithmetic
        return sched_cos(*phases[idx], in_phase)

    return schedule


def even_mults(start: float, stop: float, n: int) -> list[float]:
    """`n` values spread geometrically from `start` to `stop` (discriminative learning rates).

    `even_mults(1e-4, 1e-2, 3) == [1e-4, 1e-3, 1e-2]` (up to rounding): computed as `start * step**i`.
    """
    if n == 1:
        return [stop]
    step = (stop / start) ** (1 / (n - 1))
    return [start * step**i for i in range(n)]


def group_lrs(lr: float | slice | Sequence[float], n_groups: int) -> list[float]:
    """One learning rate per parameter group, as fastai's `set_hyper('lr', lr)` spreads it.

    * a number: the same for every group;
    * `slice(lo, hi)`: `even_mults(lo, hi, n_groups)` (lowest lr for the first group, the embeddings);
    * `slice(None, hi)`: `hi/10` for every group but the last, which gets `hi`;
    * a sequence: one value per group.
    """
    if isinstance(lr, slice):
        if lr.stop is None:
            raise ValueError(f"lr slice {lr} needs a stop (the largest learning rate)")
        if lr.start:
            return even_mults(lr.start, lr.stop, n_groups)
        return [lr.stop / 10] * (n_groups - 1) + [lr.stop]
    if isinstance(lr, (int, float)):
        return [float(lr)] * n_groups
    lrs = [float(v) for v in lr]
    if len(lrs) == 1:
        return lrs * n_groups
    if len(lrs) != n_groups:
        raise ValueError(f"got {len(lrs)} learning rates for {n_groups} parameter groups")
    return lrs


class OneCycle:
    """The 1cycle policy (fastai's `fit_one_cycle` schedule) for per-group `lr_max`.

    `lrs_moms(pct)` gives the learning rate of each group and the momentum at training progress `pct`
    (0 at the first batch). `pct_train(epoch, n_epoch, n_iter)` yields the progress of each batch of an
    epoch exactly as fastai accumulates it.
    """

    def __init__(self, lr_max: Sequence[float], div: float = 25.0, div_final: float = 1e5,
                 pct_start: float = 0.25, moms: tuple[float, float, float] = (0.95, 0.85, 0.95)):
        self.lr_max, self.div, self.div_final, self.pct_start = list(lr_max), div, div_final, pct_start
        self.moms = tuple(moms)
        self._lr = [combined_cos(pct_start, m / div, m, m / div_final) for m in self.lr_max]
        self._mom = combined_cos(pct_start, *self.moms)

    def lrs_moms(self, pct: float) -> tuple[list[float], float]:
        """Learning rate per group and momentum at training progress `pct` in [0, 1)."""
        return [f(pct) for f in self._lr], self._mom(pct)

    @staticmethod
    def pct_train(epoch: int, n_epoch: int, n_iter: int):
        """Yield fastai's `pct_train` for each of the `n_iter` batches of `epoch` (float accumulation kept)."""
        pct = epoch / n_epoch
        for _ in range(n_iter):
            yield pct
            pct += 1.0 / (n_iter * n_epoch)
