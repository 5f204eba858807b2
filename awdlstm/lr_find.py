"""The learning-rate finder (fastai book, chapter 5): train with an exponentially growing lr, watch the loss.

`lr_find` raises the learning rate from `start_lr` to `end_lr` over `num_it` batches
(`lr = start_lr * (end_lr/start_lr) ** (i/num_it)`), records the smoothed loss (beta 0.98) and stops early
once it exceeds 4x its minimum. The model and optimizer are restored afterwards. The suggestions are
fastai's, computed on the recorded points without the first `num_it//10` and the last 5:
* `valley`: the middle-ish of the longest decreasing run of losses (fastai's default);
* `steep`: where the loss falls fastest per unit of log(lr);
* `minimum`: the lr of the lowest loss, divided by 10.
"""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from awdlstm.report import SmoothLoss, plot_lr_find


def valley(lrs: torch.Tensor, losses: torch.Tensor) -> tuple[float, float]:
    """fastai's `valley`: longest decreasing subsequence of losses; a point 1/2 of the way along it."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n  # lds[i]: length of the longest decreasing run ending at i
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx]), float(losses[idx])


def steep(lrs: torch.Tensor, losses: torch.Tensor) -> tuple[float, float]:
    """fastai's `steep`: the lr where d(loss)/d(log lr) is most negative."""
    grads = (losses[1:] - losses[:-1]) / (lrs[1:].log() - lrs[:-1].log())
    lr = lrs[grads.argmin()].item()
    return lr, float(losses[_nearest(lrs, lr)])


def minimum(lrs: torch.Tensor, losses: torch.Tensor) -> tuple[float, float]:
    """fastai's `minimum`: one tenth of the lr with the lowest loss (the point marks the minimum itself)."""
    lr_min = lrs[losses.argmin()].item()
    return lr_min / 10, float(losses[_nearest(lrs, lr_min)])


def _nearest(lrs: torch.Tensor, lr: float) -> int:
    return min(range(len(lrs)), key=lambda i: abs(lrs[i] - lr))


SUGGESTIONS = {"valley": valley, "steep": steep, "minimum": minimum}


@dataclass
class LRFindResult:
    """The sweep (`lrs`, smoothed `losses`), the suggested learning rates by name and the plot's path."""

    lrs: list[float]
    losses: list[float]
    suggestions: dict[str, float] = field(default_factory=dict)
    points: dict[str, tuple[float, float]] = field(default_factory=dict)
    plot: Path | None = None


def suggest(lrs: list[float], losses: list[float], num_it: int, funcs=("valley",)) -> tuple[dict, dict]:
    """fastai's suggestions on the sweep: drop the first `num_it//10` and last 5 points, and any after a NaN."""
    lr_t = torch.tensor(lrs[num_it // 10:-5])
    loss_t = torch.tensor(losses[num_it // 10:-5])
    nan = torch.nonzero(torch.isnan(loss_t))
    if len(nan):
        lr_t, loss_t = lr_t[: nan.min()], loss_t[: nan.min()]
    if len(loss_t) < 2:
        raise ValueError(f"lr_find recorded too few points ({len(losses)}) for suggestions; raise num_it "
                         "or start_lr/end_lr closer together")
    suggestions, points = {}, {}
    for name in funcs:
        if name not in SUGGESTIONS:
            raise ValueError(f"unknown suggestion {name!r}; choose from {list(SUGGESTIONS)}")
        lr, loss = SUGGESTIONS[name](lr_t, loss_t)
        suggestions[name] = lr
        points[name] = (lr * 10 if name == "minimum" else lr, loss)
    return suggestions, points


def lr_find(learn, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100, stop_div: bool = True,
            suggest_funcs=("valley",), plot: bool = True) -> LRFindResult:
    """Sweep the learning rate of every parameter group exponentially; restore model and optimizer after.

    `learn` is an `awdlstm.train.Learner`. Its current (frozen) groups and momentum are used, as fastai does.
    """
    num_it = max(num_it, 6)
    model_state = copy.deepcopy(learn.model.state_dict())
    opt_state = copy.deepcopy(learn.opt.state_dict())
    smooth, best = SmoothLoss(), math.inf
    lrs: list[float] = []
    losses: list[float] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a diverging sweep produces NaN losses on purpose
            stop = False
            while not stop and len(lrs) < num_it:
                learn.model.train()
                learn.model.reset()
                n_before = len(lrs)
                for x, y in learn.train_dl:
                    lr = start_lr * (end_lr / start_lr) ** (len(lrs) / num_it)
                    learn.opt.set_hyper("lr", lr)
                    loss = learn.train_batch(x, y)
                    learn.bad_steps = 0
                    value = smooth.add(loss) if math.isfinite(loss) else math.nan
                    lrs.append(lr)
                    losses.append(value)
                    best = min(best, value) if math.isfinite(value) else best
                    if stop_div and (not math.isfinite(value) or value > 4 * best):
                        stop = True
                        break
                    if len(lrs) >= num_it:
                        break
                if len(lrs) == n_before:
                    raise ValueError("lr_find: train_dl yielded no batches")
    finally:
        learn.opt.zero_grad()
        learn.model.load_state_dict(model_state)
        learn.opt.load_state_dict(opt_state)
        learn.model.reset()
    result = LRFindResult(lrs, losses)
    if suggest_funcs:
        result.suggestions, result.points = suggest(lrs, losses, num_it, suggest_funcs)
    if plot and learn.run_dir is not None and learn.main:  # under torchrun only rank 0 writes
        Path(learn.run_dir).mkdir(parents=True, exist_ok=True)
        skip = 5 if len(lrs) > 5 else 0
        result.plot = plot_lr_find(Path(learn.run_dir) / "lr_find.png", lrs[: len(lrs) - skip],
                                   losses[: len(lrs) - skip], result.points)
    return result
