"""A model folder from someone else, checked before anything is built (chapter 10's `learn.load` /
`load_learner`, made safe): every field of a weights file's JSON sidecar (`lm.json`, `classifier.json`,
`encoder.json`), of `labels.json` and of the run's `config.json` has the type and range this code reads it
with, the sizes agree with the shapes of the weights, and no file the loader opens leads outside the folder (a
symbolic link to elsewhere). A bad field is a `ValueError` naming the file and the field.

    check_meta(meta, "run/classifier.json")            # types and ranges (read_meta does this)
    check_shapes(meta, "run/classifier.json", weights)  # sizes against the tensors (load_model does this)
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from .config import AWDLSTMConfig

KINDS = ("language_model", "classifier", "encoder")
_INT = {"emb_sz": 1, "n_hid": 1, "n_layers": 1, "pad_token": 0}  # AWDLSTMConfig's sizes and their least value
_BOOL = ("tie_weights", "out_bias")


def _bad(path, field: str, why: str, value) -> ValueError:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return ValueError(f"{path}: field {field!r} {why}, got {shown}")


def _int(path, field: str, v, least: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(path, field, "must be a whole number", v)
    if v < least:
        raise _bad(path, field, f"must be >= {least}", v)
    return v


def _prob(path, field: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1:
        raise _bad(path, field, "must be a number in [0, 1)", v)
    return float(v)


def check_config(cfg, path, field: str = "config") -> AWDLSTMConfig:
    """The `config` object of a sidecar: exactly AWDLSTMConfig's fields, each of its type and range."""
    if not isinstance(cfg, dict):
        raise _bad(path, field, "must be a JSON object of AWDLSTMConfig fields", cfg)
    known = set(AWDLSTMConfig.__dataclass_fields__)
    for k in sorted(set(cfg) ^ known):
        raise _bad(path, f"{field}.{k}", "is not a field of AWDLSTMConfig" if k in cfg else "is missing", cfg.get(k))
    for k, least in _INT.items():
        _int(path, f"{field}.{k}", cfg[k], least)
    for k in _BOOL:
        if not isinstance(cfg[k], bool):
            raise _bad(path, f"{field}.{k}", "must be true or false", cfg[k])
    dm = cfg["drop_mult"]
    if isinstance(dm, bool) or not isinstance(dm, int | float) or not math.isfinite(dm) or dm < 0:
        raise _bad(path, f"{field}.drop_mult", "must be a number >= 0", dm)
    for k in AWDLSTMConfig.__dataclass_fields__:  # in the dataclass's order: the first bad one is named
        if k.endswith("_p"):
            _prob(path, f"{field}.{k}", cfg[k])
            _prob(path, f"{field}.{k} * drop_mult", cfg[k] * dm)
    return AWDLSTMConfig(**cfg)


def check_meta(meta: dict, path) -> dict:
    """Every field of a weights file's sidecar, before anything is built from it (see checkpoint.py)."""
    kind = meta.get("kind")
    if kind not in KINDS:
        raise _bad(path, "kind", f"must be one of {list(KINDS)}", kind)
    vocab_sz = _int(path, "vocab_sz", meta.get("vocab_sz"), 1)
    cfg = check_config(meta.get("config"), path)
    if cfg.pad_token >= vocab_sz:
        raise _bad(path, "config.pad_token", f"must be a token id below vocab_sz ({vocab_sz})", cfg.pad_token)
    vocab = meta.get("vocab")
    if vocab is not None:
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise _bad(path, "vocab", "must be a list of strings (the tokens) or null", vocab)
        if len(vocab) != vocab_sz:
            raise _bad(path, "vocab", f"must hold vocab_sz = {vocab_sz} tokens; its length", len(vocab))
    digest = meta.get("sha256")
    if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
        raise _bad(path, "sha256", "must be 64 hexadecimal digits", digest)
    c = meta.get("classifier")
    if kind != "classifier":
        if c is not None:
            raise _bad(path, "classifier", f"must be null (the kind is {kind})", c)
        return meta
    if not isinstance(c, dict):
        raise _bad(path, "classifier", "must be a JSON object (n_class, lin_ftrs, ps, bptt, max_len)", c)
    for k in sorted(set(c) ^ {"n_class", "lin_ftrs", "ps", "bptt", "max_len"}):
        raise _bad(path, f"classifier.{k}", "is not a classifier field" if k in c else "is missing", c.get(k))
    _int(path, "classifier.n_class", c["n_class"], 2)
    bptt = _int(path, "classifier.bptt", c["bptt"], 1)
    if c["max_len"] is not None and _int(path, "classifier.max_len", c["max_len"], 1) < bptt:
        raise _bad(path, "classifier.max_len", f"must be null or >= classifier.bptt ({bptt})", c["max_len"])
    for k in ("lin_ftrs", "ps"):
        if not isinstance(c[k], list):
            raise _bad(path, f"classifier.{k}", "must be a list", c[k])
    for i, v in enumerate(c["lin_ftrs"]):
        _int(path, f"classifier.lin_ftrs[{i}]", v, 1)
    for i, v in enumerate(c["ps"]):
        _prob(path, f"classifier.ps[{i}]", v)
    if len(c["ps"]) != len(c["lin_ftrs"]):
        raise _bad(path, "classifier.ps", f"must hold one dropout per lin_ftrs layer ({len(c['lin_ftrs'])})", c["ps"])
    return meta


def check_shapes(meta: dict, path, sd: dict[str, torch.Tensor]) -> None:
    """The sizes of a (checked) sidecar against the shapes of its weights: vocab_sz and emb_sz against the
    embedding, n_layers against the LSTMs, n_hid against their hidden size, n_class and lin_ftrs against the
    head. Run before a model is built, so that a size nobody saved never allocates memory."""
    prefix = {"language_model": "encoder.", "classifier": "encoder.module.", "encoder": ""}[meta["kind"]]
    cfg = meta["config"]
    emb = sd.get(prefix + "encoder.weight")
    if not isinstance(emb, torch.Tensor) or emb.dim() != 2:
        return  # no embedding where expected: load_by_name names the missing weights
    _agree(path, "vocab_sz", meta["vocab_sz"], emb.shape[0], f"{prefix}encoder.weight {tuple(emb.shape)}")
    _agree(path, "config.emb_sz", cfg["emb_sz"], emb.shape[1], f"{prefix}encoder.weight {tuple(emb.shape)}")
    layers = sorted({int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"rnns\.(\d+)\.", k))})
    _agree(path, "config.n_layers", cfg["n_layers"], len(layers), "LSTM layers in the weights")
    hh = sd.get(f"{prefix}rnns.0.module.weight_hh_l0")
    if cfg["n_layers"] > 1 and isinstance(hh, torch.Tensor) and hh.dim() == 2:
        _agree(path, "config.n_hid", cfg["n_hid"], hh.shape[1], f"{prefix}rnns.0.module.weight_hh_l0 {tuple(hh.shape)}")
    if meta["kind"] == "classifier":
        lins = sorted((int(m.group(1)), v) for k, v in sd.items()
                      if (m := re.fullmatch(r"head\.layers\.(\d+)\.\d+\.weight", k)) and v.dim() == 2)
        outs = [v.shape[0] for _, v in lins]
        c = meta["classifier"]
        if outs:
            _agree(path, "classifier.n_class", c["n_class"], outs[-1], "outputs of the last head layer")
            _agree(path, "classifier.lin_ftrs", c["lin_ftrs"], outs[:-1], "the hidden head layers' sizes")


def _agree(path, field: str, value, found, where: str) -> None:
    if value != found:
        raise ValueError(f"{path}: field {field!r} is {value} but the weights have {found} ({where})")


def check_labels(obj, path, n_class: int | None = None) -> list[str]:
    """labels.json: {"labels": [distinct non-empty strings]}, as many as the classifier's classes."""
    labels = obj.get("labels") if isinstance(obj, dict) else None
    if not isinstance(labels, list) or not all(isinstance(o, str) and o for o in labels):
        raise _bad(path, "labels", "must be a list of non-empty strings", labels)
    if len(set(labels)) != len(labels):
        raise _bad(path, "labels", "must not repeat a label", labels)
    if n_class is not None and len(labels) != n_class:
        raise ValueError(f"{path}: field 'labels' has {len(labels)} labels but the classifier predicts {n_class} "
                         "classes (files from different runs?)")
    return labels


def check_run_config(config: dict, path) -> dict:
    """The fields of a run's config.json that loading a model reads: `backwards` (true/false) and
    `recipe.max_tokens` (a whole number); the rest of it only describes the run."""
    if "backwards" in config and not isinstance(config["backwards"], bool):
        raise _bad(path, "backwards", "must be true or false", config["backwards"])
    recipe = config.get("recipe", {})
    if not isinstance(recipe, dict):
        raise _bad(path, "recipe", "must be a JSON object", recipe)
    if "max_tokens" in recipe:
        v = recipe["max_tokens"]
        if isinstance(v, bool) or not isinstance(v, int):
            raise _bad(path, "recipe.max_tokens", "must be a whole number (0: all tokens)", v)
    return config


def check_inside(folder, file) -> Path:
    """`folder/file`, refused when it leads outside `folder` (a symbolic link to elsewhere, a '..')."""
    folder, path = Path(folder), Path(folder) / file
    if folder.resolve() not in path.resolve().parents:
        raise ValueError(f"{path}: leads outside the folder {folder} (to {path.resolve()}); copy the file into it")
    return path
