"""Weights on disk: our checkpoint format (weights + JSON config + vocab list, never pickled objects), and
the one place torch files are written (atomically) and read (tensors only, checksummed).

`save_model(model, "run/lm.pt", vocab)` writes two files, each atomically (temp file + os.replace):
* `run/lm.pt`: `torch.save` of a flat `{name: tensor}` state dict (read back with `weights_only=True`);
* `run/lm.json`: `{"format": "awdlstm", "version": 1, "kind": "language_model" | "classifier" | "encoder",
  "vocab_sz", "config": {AWDLSTMConfig fields}, "classifier": {n_class, lin_ftrs, ps, bptt, max_len} | null,
  "vocab": [token, ...] | null, "sha256": tensor_digest of the weights (checked on loading),
  "content_sha256": checksum of everything else in the JSON (checked on reading: an edited vocab is refused)}`.
  Files without "content_sha256" (written before it existed) are read as they are.
`save_encoder` / `load_encoder` carry the AWD-LSTM encoder from the fine-tuned language model to the
classifier (chapter 10, "Fine-Tuning the Language Model": `learn.save_encoder('finetuned')`).
"""
from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from awdlstm.tokenizers.atomic import atomic_write, read_json, with_checksum, write_text
from awdlstm.tokenizers.vocab import as_itos

from .checkpoint_check import check_meta, check_shapes
from .classifier import TextClassifier
from .model import AWDLSTM, AWDLSTMConfig, LanguageModel

FORMAT, VERSION = "awdlstm", 1


def meta_path(path: str | Path) -> Path:
    """The JSON file beside a weights file: `lm.pt` -> `lm.json`."""
    path = Path(path)
    if path.suffix == ".json":
        raise ValueError(f"{path}: give the weights file's path, not the .json beside it")
    return path.with_suffix(".json")


# ---------------------------------------------------------------- torch files: atomic, checksummed, code-free

def save_torch(obj: dict, path: str | Path) -> Path:
    """`torch.save(obj, path)` through a temporary file in the same folder and `os.replace` (atomic)."""
    with atomic_write(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def torch_load(path: str | Path, map_location: str | torch.device = "cpu"):
    """`torch.load(path, weights_only=True)`: tensors and plain containers only, never code from the file.

    A file that is not a complete torch file (truncated by a crash or a partial copy, overwritten, empty)
    or that holds pickled objects is a `ValueError` naming the file, not a traceback from deep inside torch.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: refused, it holds more than tensors and plain values "
                         f"(weights_only load: {_first_line(e)})") from None
    except (RuntimeError, EOFError, OSError, KeyError, IndexError, AttributeError, ImportError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: truncated or corrupted, not a complete torch file "
                         f"({type(e).__name__}: {_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else "no details"


def tensor_digest(sd: dict) -> str:
    """sha256 of a state dict's names, dtypes, shapes and bytes: saved with the weights, checked on loading,
    so that a file corrupted inside its tensor data (which `torch.load` reads without noticing) is refused."""
    h = hashlib.sha256()
    for k in sorted(sd):
        t = sd[k]
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous().reshape(-1)
            h.update(f"{k}|{t.dtype}|{t.numel()}|".encode())
            h.update(t.view(torch.uint8).numpy())
    return h.hexdigest()


def check_digest(path: str | Path, sd: dict, digest: str | None) -> None:
    """Refuse weights whose `tensor_digest` is not the one saved with them (`digest` None: not recorded)."""
    if digest is not None and tensor_digest(sd) != digest:
        raise ValueError(f"{path}: corrupted, the weights do not match the checksum saved with them")


# ---------------------------------------------------------------- models on disk

def _itos(vocab) -> list[str] | None:
    return None if vocab is None else as_itos(vocab)


def _write(path: str | Path, sd: dict[str, torch.Tensor], meta: dict) -> None:
    path = Path(path)
    mpath = meta_path(path)
    weights = {k: v.detach().cpu() for k, v in sd.items()}  # tied weights stay one storage
    save_torch(weights, path)
    meta = {**meta, "sha256": tensor_digest(weights)}  # checked on loading: a corrupted file is refused
    # and the JSON itself (vocab, config, sizes, the weights' checksum) carries a checksum, checked by read_json
    text = json.dumps(with_checksum({"format": FORMAT, "version": VERSION, **meta}), ensure_ascii=True, indent=1)
    write_text(mpath, text)


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A `{name: tensor}` dict from a .pt/.pth file, loaded with `weights_only=True` (no code runs)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    sd = torch_load(path)
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict (a dict of tensors), got {type(sd).__name__}")
    return sd


def read_meta(path: str | Path, required: bool = True) -> dict | None:
    """The JSON metadata beside a weights file (None if absent and not `required`)."""
    mpath = meta_path(path)
    if not mpath.exists():
        if required:
            raise FileNotFoundError(f"{mpath}: the config/vocab file that goes with {path} is missing")
        return None
    meta = read_json(mpath)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{mpath}: not an awdlstm checkpoint file")
    if meta.get("version") != VERSION:
        raise ValueError(f"{mpath}: checkpoint version {meta.get('version')}, this code reads {VERSION}")
    return check_meta(meta, mpath)  # every field's type and range, before anything is built from it


def _fill_tied(model: nn.Module, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fill in missing aliases of a tied embedding (fastai files may lack `encoder_dp.emb.weight`)."""
    own = model.state_dict()
    groups = [k for k in own if k.endswith("encoder.weight") or k.endswith("encoder_dp.emb.weight")
              or (k == "decoder.decoder.weight" and getattr(getattr(model, "cfg", None), "tie_weights", False))]
    src = next((k for k in groups if k in sd), None)
    if src is None:
        return sd
    return {**{k: sd[src] for k in groups if k not in sd}, **sd}


def load_by_name(model: nn.Module, sd: dict[str, torch.Tensor], source: str = "state dict",
                 verify: Callable[[], None] | None = None) -> nn.Module:
    """Load `sd` into `model` by key name; any missing or unexpected key or shape mismatch is a clear error.

    `verify` (e.g. the checksum check) runs once names and shapes fit, before any weight is copied: a
    refused file leaves the model as it was."""
    sd = _fill_tied(model, sd)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{name}: {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}"
                 for name, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes))
                 if items]
        raise ValueError(f"{source} does not fit {type(model).__name__}; " + "; ".join(parts))
    if verify is not None:
        verify()
    model.load_state_dict(sd)
    return model


def _awd_lstm(model: nn.Module) -> AWDLSTM:
    if isinstance(model, AWDLSTM):
        return model
    if isinstance(model, LanguageModel):
        return model.encoder
    if isinstance(model, TextClassifier):
        return model.encoder.module
    raise TypeError(f"expected an AWDLSTM, LanguageModel or TextClassifier, got {type(model).__name__}")


def save_encoder(model: nn.Module, path: str | Path, vocab=None) -> None:
    """Save the AWD-LSTM encoder of `model` (fastai's `learn.save_encoder`), with its config and vocab."""
    enc = _awd_lstm(model)
    _write(path, enc.state_dict(), {"kind": "encoder", "vocab_sz": enc.vocab_sz, "config": enc.cfg.to_dict(),
                                    "classifier": None, "vocab": _itos(vocab)})


def load_encoder(model: nn.Module, path: str | Path, vocab=None) -> nn.Module:
    """Load an encoder saved by `save_encoder` into `model`'s AWD-LSTM (fastai's `learn.load_encoder`).

    The sizes must match; if `vocab` is given and a vocab was saved, they must be the same list.
    The dropouts stay the model's own (a classifier keeps its `awd_lstm_clas_config` dropouts).
    """
    enc = _awd_lstm(model)
    meta = read_meta(path)
    saved = AWDLSTMConfig.from_dict(meta["config"])
    for k in ("emb_sz", "n_hid", "n_layers", "pad_token"):
        if getattr(saved, k) != getattr(enc.cfg, k):
            raise ValueError(f"{path}: encoder {k}={getattr(saved, k)} but the model has {getattr(enc.cfg, k)}")
    itos = _itos(vocab)
    if itos is not None and meta.get("vocab") is not None and meta["vocab"] != itos:
        raise ValueError(f"{path}: the encoder was saved with another vocab ({len(meta['vocab'])} tokens; "
                         f"given {len(itos)}); use the language model's vocab for the classifier")
    sd = full = read_weights(path)
    check_shapes(meta, meta_path(path), full)
    if meta.get("kind") != "encoder":
        prefix = {"language_model": "encoder.", "classifier": "encoder.module."}.get(meta.get("kind"), "")
        sd = {k[len(prefix):]: v for k, v in full.items() if k.startswith(prefix)}
    load_by_name(enc, sd, source=str(path), verify=lambda: check_digest(path, full, meta.get("sha256")))
    return model


def save_model(model: LanguageModel | TextClassifier, path: str | Path, vocab=None) -> None:
    """Save a whole language model or classifier: weights + JSON config (+ the vocab list)."""
    if isinstance(model, LanguageModel):
        meta = {"kind": "language_model", "vocab_sz": model.encoder.vocab_sz, "classifier": None}
    elif isinstance(model, TextClassifier):
        enc = model.encoder
        meta = {"kind": "classifier", "vocab_sz": enc.module.vocab_sz,
                "classifier": {"n_class": model.n_class, "lin_ftrs": model.lin_ftrs, "ps": model.ps,
                               "bptt": enc.bptt, "max_len": enc.max_len}}
    else:
        raise TypeError(f"save_model: expected LanguageModel or TextClassifier, got {type(model).__name__}")
    _write(path, model.state_dict(), {**meta, "config": model.cfg.to_dict(), "vocab": _itos(vocab)})


class LoadedModel(NamedTuple):
    model: LanguageModel | TextClassifier
    itos: list[str] | None


def load_model(path: str | Path) -> LoadedModel:
    """Rebuild a model saved by `save_model` from its JSON config and load its weights by name."""
    meta = read_meta(path)
    sd = read_weights(path)
    check_shapes(meta, meta_path(path), sd)  # the sizes agree with the tensors before the model is built
    cfg = AWDLSTMConfig.from_dict(meta["config"])
    if meta["kind"] == "language_model":
        model = LanguageModel(meta["vocab_sz"], cfg)
    elif meta["kind"] == "classifier":
        c = meta["classifier"]
        model = TextClassifier(meta["vocab_sz"], c["n_class"], cfg, lin_ftrs=c["lin_ftrs"], ps=c["ps"],
                               bptt=c["bptt"], max_len=c["max_len"])
    else:
        raise ValueError(f"{path}: holds an {meta['kind']!r}; use load_encoder to load an encoder into a model")
    load_by_name(model, sd, source=str(path), verify=lambda: check_digest(path, sd, meta.get("sha256")))
    return LoadedModel(model, meta.get("vocab"))
