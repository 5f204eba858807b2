"""Adam with decoupled ("true") weight decay, as fastai's `Adam` computes it (fastai book, chapter 16).

One step for a parameter `p` with gradient `g`, learning rate `lr`, momentum `mom` (beta1, scheduled by
the 1cycle policy), `sqr_mom` (beta2), `eps` and weight decay `wd`:

    p        = p * (1 - lr*wd)                          # decoupled weight decay, skipped for biases/norms
    grad_avg = mom * grad_avg + (1-mom) * g             # first moment
    sqr_avg  = sqr_mom * sqr_avg + (1-sqr_mom) * g*g    # second moment
    p        = p - lr/debias1 * grad_avg / (sqrt(sqr_avg/debias2) + eps)

with `debias1 = 1 - mom**step` and `debias2 = 1 - sqr_mom**step` (eps is added *after* the square root of
the bias-corrected second moment). The optimizer owns the parameter groups and the freezing of the
book's `freeze_to(n)`: frozen groups get no gradient, hence no update and no weight decay.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import torch
from torch import nn

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
              nn.InstanceNorm3d, nn.LayerNorm)


def norm_bias_params(model: nn.Module, with_bias: bool = True) -> list[nn.Parameter]:
    """Every parameter of a normalisation layer, plus (`with_bias`) every module's `.bias` Parameter.

    These get no weight decay (fastai's `wd_bn_bias=False`), and the norm layers keep training while the
    rest is frozen (`train_bn=True`). As in fastai only attributes named `bias` count, so an LSTM's
    `bias_ih_l0`/`bias_hh_l0` are decayed like weights.
    """
    if isinstance(model, NORM_TYPES):
        return list(model.parameters())
    found = [p for child in model.children() for p in norm_bias_params(child, with_bias)]
    bias = getattr(model, "bias", None)
    if with_bias and isinstance(bias, nn.Parameter):
        found.append(bias)
    return found


def debias(mom: float, damp: float, step: int) -> float:
    """fastai's bias correction `damp * (1 - mom**step) / (1 - mom)` (written the same way, for equal floats)."""
    return damp * (1 - mom**step) / (1 - mom)


class Adam:
    """Adam over parameter groups (one list of parameters per group), each with its own hyper-parameters.

    `hypers[i]` holds `lr, mom, sqr_mom, eps, wd` of group `i`; `no_wd` are parameters never decayed;
    `train_always` parameters stay trainable when their group is frozen (BatchNorm with `train_bn`).
    """

    def __init__(self, groups: Sequence[Iterable[nn.Parameter]], lr: float = 1e-3, mom: float = 0.9,
                 sqr_mom: float = 0.99, eps: float = 1e-5, wd: float = 0.01,
                 no_wd: Iterable[nn.Parameter] = (), train_always: Iterable[nn.Parameter] = ()):
        self.groups = [list(g) for g in groups]
        if not self.groups or not all(self.groups):
            raise ValueError("Adam needs at least one parameter group and no empty group")
        seen: set[int] = set()
        for g in self.groups:
            for p in g:
                if id(p) in seen:
                    raise ValueError(f"a parameter of shape {tuple(p.shape)} is in two groups (tied weights "
                                     "must appear once)")
                seen.add(id(p))
        self.hypers = [dict(lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd) for _ in self.groups]
        self.no_wd = {id(p) for p in no_wd}
        self.train_always = {id(p) for p in train_always}
        self.state: dict[int, dict] = {}  # id(param) -> {'grad_avg', 'sqr_avg', 'step'}
        self.frozen_idx = 0

    def params(self) -> list[nn.Parameter]:
        """All parameters, group after group."""
        return [p for g in self.groups for p in g]

    @property
    def param_groups(self) -> list[dict]:
        """torch-style view (`[{'params': [...], 'lr': ...}, ...]`), e.g. for `torch.amp.GradScaler`."""
        return [{"params": g, **h} for g, h in zip(self.groups, self.hypers, strict=True)]

    def set_hyper(self, name: str, values: float | Sequence[float]) -> None:
        """Set hyper-parameter `name` to one value for all groups or one value per group."""
        if isinstance(values, (int, float)):
            values = [values] * len(self.groups)
        if len(values) != len(self.groups):
            raise ValueError(f"{len(values)} values for {name!r} but {len(self.groups)} parameter groups")
        for h, v in zip(self.hypers, values, strict=True):
            h[name] = float(v)

    def zero_grad(self) -> None:
        """Drop the gradients (set them to None)."""
        for p in self.params():
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step for every parameter that has a gradient (frozen parameters have none)."""
        for group, h in zip(self.groups, self.hypers, strict=True):
            lr, mom, sqr_mom, eps, wd = h["lr"], h["mom"], h["sqr_mom"], h["eps"], h["wd"]
            for p in group:
                if p.grad is None:
                    continue
                grad = p.grad
                if wd != 0 and id(p) not in self.no_wd:
                    p.mul_(1 - lr * wd)
                st = self.state.get(id(p))
                if st is None:
                    st = self.state[id(p)] = dict(grad_avg=torch.zeros_like(p), sqr_avg=torch.zeros_like(p),
                                                  step=0)
                st["grad_avg"].mul_(mom).add_(grad, alpha=1 - mom)
                st["sqr_avg"].mul_(sqr_mom).addcmul_(grad, grad, value=1 - sqr_mom)
                st["step"] += 1
                debias1 = debias(mom, 1 - mom, st["step"])
                debias2 = debias(sqr_mom, 1 - sqr_mom, st["step"])
                p.addcdiv_(st["grad_avg"], (st["sqr_avg"] / debias2).sqrt() + eps, value=-lr / debias1)

    def clear_state(self) -> None:
        """Forget the moving averages and step counts (fastai does this on every freeze/unfreeze)."""
        self.state = {}

    def freeze_to(self, n: int) -> None:
        """Freeze the groups before `n` (negative counts from the end), train the others; clears the state.

        `freeze_to(-1)` trains only the last group, `freeze_to(0)` trains everything.
        """
        n_groups = len(self.groups)
        self.frozen_idx = n if n >= 0 else n_groups + n
        if self.frozen_idx >= n_groups:
            warnings.warn(f"Freezing {self.frozen_idx} groups; model has {n_groups}; whole model is frozen.",
                          stacklevel=2)
        for i, g in enumerate(self.groups):
            for p in g:
                trainable = i >= self.frozen_idx or id(p) in self.train_always
                p.requires_grad_(trainable)
                if not trainable:
                    p.grad = None
        self.clear_state()

    def state_dict(self) -> dict:
        """Hyper-parameters, frozen index and per-parameter state (tensors and ints only), in group order."""
        state = [self.state.get(id(p), {}) for p in self.params()]
        return {"hypers": [dict(h) for h in self.hypers], "frozen_idx": self.frozen_idx, "state": state}

    def load_state_dict(self, sd: dict) -> None:
        """Restore what `state_dict` returned (for the same parameter groups)."""
        params = self.params()
        if len(sd["hypers"]) != len(self.groups) or len(sd["state"]) != len(params):
            raise ValueError(f"optimizer state has {len(sd['hypers'])} groups / {len(sd['state'])} parameters, "
                             f"expected {len(self.groups)} / {len(params)}")
        self.hypers = [dict(h) for h in sd["hypers"]]
        self.freeze_to(int(sd["frozen_idx"]))
        self.state = {}
        for p, st in zip(params, sd["state"], strict=True):
            if st:
                self.state[id(p)] = {"grad_avg": st["grad_avg"].to(p.device).clone(),
                                     "sqr_avg": st["sqr_avg"].to(p.device).clone(), "step": int(st["step"])}
