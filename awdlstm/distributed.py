"""Training on several processes (GPUs or machines): data parallelism with `torchrun`.

    torchrun --nproc_per_node 2 scripts/finetune_lm.py ...      # one process ("rank") per GPU, or per CPU share

Every rank runs the same script with the same seed, so all build the same vocab, model and batch order.
Each rank then reads its own share of every batch (rows `rank::world_size`: see awdlstm.data.LMLoader / ClasLoader),
computes the gradient of its share, and DistributedDataParallel averages the gradients across ranks during
`backward()`; with equal shares that average is the gradient of the whole batch, so every rank takes the same
optimizer step and the weights stay identical. Metrics are summed across ranks; only rank 0 prints and
writes files.

torchrun sets the environment variables read here: RANK (this process, 0..WORLD_SIZE-1), WORLD_SIZE and
LOCAL_RANK (the process's index on its machine: its GPU). Without them everything runs as one process.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    """How many processes train together (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's index, 0..world_size()-1 (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on the process that prints and writes files (rank 0)."""
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); returns this rank's device.

    Backend: nccl for CUDA (rank r of a machine uses GPU LOCAL_RANK), gloo for CPU. A no-op for one process.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if "RANK" not in os.environ or "MASTER_ADDR" not in os.environ:
        raise RuntimeError("WORLD_SIZE > 1 but RANK / MASTER_ADDR are not set: launch with torchrun")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():  # (a second call, e.g. a script's main() in a test worker, reuses the group)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def cleanup() -> None:
    """Leave the process group."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def finish() -> None:
    """End of a script: wait until every rank gets here (rank 0 has written its files), then leave the group."""
    barrier()
    cleanup()


def barrier() -> None:
    """Wait until every rank gets here."""
    if world_size() > 1:
        dist.barrier()


def _comm_device() -> torch.device:
    """Where collectives need their tensors: the rank's GPU for nccl, the CPU for gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of `t` over all ranks, on `t`'s device (a new tensor; `t` itself when not distributed)."""
    if world_size() == 1:
        return t
    total = t.detach().to(_comm_device(), copy=True)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(t.device)


def sync_buffers(model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts them at the start of each training forward, but that forward then updates them with the
    rank's own batch; syncing after the epoch gives every rank the same model for validation and saving.
    """
    if world_size() == 1:
        return
    for buf in model.buffers():
        t = buf.detach().to(_comm_device())
        dist.broadcast(t, 0)
        buf.copy_(t)


def broadcast_str(s: str | None) -> str:
    """Rank 0's string, on every rank (e.g. the run folder it chose)."""
    if world_size() == 1:
        return s
    dev = _comm_device()
    data = torch.tensor(list((s or "").encode("utf-8")) if is_main() else [], dtype=torch.uint8, device=dev)
    n = torch.tensor([data.numel()], device=dev)
    dist.broadcast(n, 0)
    if not is_main():
        data = torch.zeros(int(n.item()), dtype=torch.uint8, device=dev)
    dist.broadcast(data, 0)
    return bytes(data.tolist()).decode("utf-8")


class WithLoss(nn.Module):
    """`loss_fn(model, x, y)` as the forward of a module, for DistributedDataParallel to wrap.

    This is the one place where multi-process training needs the loss inside a module's forward: DDP averages
    the gradients of what runs inside the forward of the module it wraps (its forward prepares the gradient
    hooks), so a loss that uses the model's weights outside `model.forward` (the language model's decoder
    fused with its loss, fused_loss.py) must run inside a wrapped forward: this one. One process calls
    `loss_fn(model, x, y)` directly. The wrapped model keeps its own parameter names (`WithLoss.model.*`).
    """

    def __init__(self, model: nn.Module, loss_fn: Callable):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        return self.loss_fn(self.model, x, y)


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Send this process's stdout to the void (ranks other than 0 print nothing; errors still show)."""
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        yield
