"""Checkpoints and random-number state: save a training run, resume it bit for bit, repeat it with a seed.

A checkpoint is one `torch.save`d dict of tensors, numbers, strings, lists and dicts only (so that
`torch.load(weights_only=True)` reads it and loading never runs code from the file):

    {"model": state_dict, "digest": tensor_digest(state_dict), "opt": Adam.state_dict(),
     "fit": {...position in the schedule...}, "rng": rng_state(), "history": [...]}

It is written atomically: to a temporary file in the same folder, then `os.replace`d over the old one, so an
interrupted save never leaves half a checkpoint behind.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from awdlstm.checkpoint import check_digest, torch_load


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
