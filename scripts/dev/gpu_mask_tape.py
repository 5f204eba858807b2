"""Train-mode steps on the CPU and on the device with the same dropout masks (part `parity` of gpu_check.py):
a MaskTape records every mask on the CPU and replays it on the device, so that WeightDropout (DropConnect),
RNNDropout and EmbeddingDropout drop the same units and weights on both sides."""
from __future__ import annotations

import contextlib
import math

import torch
from gpu_check_common import maxdiff, rel_maxdiff


class MaskTape:
    """Every dropout mask of a forward pass drawn once on the CPU (recording) and replayed, in the same order,
    on the device: the CPU and the device then drop exactly the same units and weights.

    Stands in for awdlstm.dropout's `dropout_mask` (RNNDropout, EmbeddingDropout) and `F.dropout`
    (WeightDropout's DropConnect) while `with tape.patched():` is active.
    """

    def __init__(self):
        self.masks: list[torch.Tensor] = []
        self.replaying, self.i = False, 0

    def draw(self, like: torch.Tensor, shape: tuple[int, ...], p: float) -> torch.Tensor:
        if not self.replaying:
            m = torch.empty(shape, dtype=torch.float32).bernoulli_(1 - p).div_(1 - p)
            self.masks.append(m)
        else:
            m = self.masks[self.i]
            self.i += 1
            if tuple(m.shape) != tuple(shape):
                raise RuntimeError(f"mask {self.i - 1}: recorded {tuple(m.shape)}, replay asks {tuple(shape)}")
        return m.to(like.device, like.dtype)

    def replay(self) -> None:
        self.replaying, self.i = True, 0

    @contextlib.contextmanager
    def patched(self):
        import torch.nn.functional as F

        import awdlstm.dropout as D
        tape = self

        class Functional:  # torch.nn.functional, but dropout from the tape
            def __getattr__(self, name):
                return getattr(F, name)

            @staticmethod
            def dropout(x, p=0.5, training=True, inplace=False):
                return x * tape.draw(x, tuple(x.shape), p) if training and p > 0 else x

        old = D.dropout_mask, D.F
        D.dropout_mask = lambda x, sz, p: tape.draw(x, tuple(sz), p)
        D.F = Functional()
        try:
            yield
        finally:
            D.dropout_mask, D.F = old


def train_steps(model, batches, kind: str, device: torch.device, tape: MaskTape, lr: float = 1.0) -> dict:
    """Train-mode steps (loss + AR/TAR for the LM, as Learner.train_batch; SGD so that tiny gradient
    differences stay tiny): per-step losses and gradients, and the final weights, on the CPU."""
    import torch.nn.functional as F

    from awdlstm.fused_loss import fused_lm_loss
    from awdlstm.loss import ar_tar
    model = model.to(device).train()
    model.reset()
    params = dict(model.named_parameters())
    opt = torch.optim.SGD(params.values(), lr=lr)
    losses, grads = [], []
    with tape.patched():
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            if kind == "lm":
                loss, raw, out = fused_lm_loss(model, x, y)  # the fused decoder + loss, as Learner in fp32
                total = loss + ar_tar(raw, out, 2.0, 1.0)
            else:
                loss = F.cross_entropy(model(x)[0], y)
                total = loss
            total.backward()
            losses.append(float(loss.detach()))
            grads.append({n: p.grad.detach().cpu().clone() for n, p in params.items() if p.grad is not None})
            opt.step()
            opt.zero_grad()
    return {"losses": losses, "grads": grads, "weights": {n: p.detach().cpu().clone() for n, p in params.items()}}


def compare_steps(cpu: dict, dev: dict) -> dict:
    """The device's steps against the CPU's: the largest relative loss and gradient differences, the weights'
    max |diff|, and whether the device's losses and gradients are all finite."""
    loss_rel = max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(dev["losses"], cpu["losses"], strict=True))
    grad_rel, worst = 0.0, ""
    for gd, gc in zip(dev["grads"], cpu["grads"], strict=True):
        if set(gd) != set(gc):
            raise ValueError(f"gradients for different parameters: {sorted(set(gd) ^ set(gc))}")
        for n in gc:
            r = rel_maxdiff(gd[n], gc[n])
            if r >= grad_rel:
                grad_rel, worst = r, n
    w = max(maxdiff(dev["weights"][n], cpu["weights"][n]) for n in cpu["weights"])
    finite = all(math.isfinite(v) for v in dev["losses"]) and all(
        bool(torch.isfinite(g).all()) for gs in dev["grads"] for g in gs.values())
    return {"loss_rel": loss_rel, "grad_rel": grad_rel, "worst_grad": worst, "weights_maxdiff": w,
            "finite": finite, "losses_device": dev["losses"], "losses_cpu": cpu["losses"],
            "n_grads": len(cpu["grads"][0])}
