"""Weights on disk: fastai's files (the WT103 language model of chapter 10, "Fine-Tuning the Language Model")
and our own checkpoints.

* `from_fastai_state_dict(model, sd)`: load a fastai state dict into our `LanguageModel` / `TextClassifier`,
  mapping fastai's key names to ours and loading **by name** (fastai's `load_ignore_keys` loads by position).
* `load_fastai_lm(weights_path, itos_path, vocab=None)`: fastai's `lstm_fwd.pth` / `lstm_bwd.pth` +
  `itos_wt103.pkl` (or one of our checkpoints), with the embedding rows matched to a new vocab like fastai's
  `match_embeds`.
* `save_encoder` / `load_encoder`, `save_model` / `load_model`: our format (see checkpoint.py).

Nothing here executes code from a file: weights go through `torch.load(weights_only=True)`, the itos pickle
through an unpickler that accepts only lists and strings.
"""
from __future__ import annotations

import io
import pickle
import re
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import torch

from awdlstm.tokenizers.atomic import read_json

from .checkpoint import (
    check_digest,
    load_by_name,
    load_encoder,
    load_model,
    read_meta,
    read_weights,
    save_encoder,
    save_model,
)
from .classifier import TextClassifier
from .model import AWDLSTMConfig, LanguageModel, lm_config

__all__ = ["LoadedLM", "from_fastai_state_dict", "load_by_name", "load_encoder", "load_fastai_lm", "load_model",
           "map_fastai_keys", "match_embeds", "read_itos_pickle", "save_encoder", "save_model"]


# ----------------------------------------------------------------------------------------- the itos pickle
class _ListOfStringsUnpickler(pickle.Unpickler):
    """An unpickler that builds only built-in containers and strings: any class or function is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: an itos pickle holds only strings")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing a persistent id: an itos pickle holds only strings")


def read_itos_pickle(path: str | Path) -> list[str]:
    """Read fastai's `itos_wt103.pkl` (a pickled list of strings) without executing anything in it."""
    data = Path(path).read_bytes()
    try:
        itos = _ListOfStringsUnpickler(io.BytesIO(data), encoding="utf-8").load()
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: not a plain list of strings ({e})") from None
    if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
        raise ValueError(f"{path}: expected a pickled list of strings, got {type(itos).__name__}")
    return itos


def _read_itos(path: str | Path) -> list[str]:
    """itos from a .pkl (fastai) or a .json file (a list, or our checkpoint metadata with a "vocab" entry)."""
    path = Path(path)
    if path.suffix == ".json":
        data = read_json(path)
        itos = data.get("vocab") if isinstance(data, dict) else data
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise ValueError(f"{path}: no vocab list of strings in this JSON file")
        return itos
    return read_itos_pickle(path)


# ------------------------------------------------------------------------------------------- key mapping
_RAW = re.compile(r"(.*rnns\.\d+)\.(\w+)_raw")
_DROPPED = re.compile(r"(.*rnns\.\d+)\.module\.(\w+)")


def map_fastai_keys(sd: dict[str, torch.Tensor], prefixes: dict[str, str]) -> dict[str, torch.Tensor]:
    """Rename fastai's state-dict keys to ours.

    `prefixes` maps fastai's top-level index to our attribute ({"0": "encoder", "1": "decoder"} for a
    language model, {"0": "encoder", "1": "head"} for a classifier). fastai's `WeightDropout` keeps the
    trained hidden weight as `rnns.N.weight_hh_l0_raw`; ours keeps it in the LSTM as
    `rnns.N.module.weight_hh_l0`. Older files also hold the last dropped copy `rnns.N.module.weight_hh_l0`
    beside `_raw`: that copy is ignored (as fastai's `clean_raw_keys` does).
    e.g. "0.rnns.1.weight_hh_l0_raw" -> "encoder.rnns.1.module.weight_hh_l0", "1.decoder.bias" -> "decoder.decoder.bias".
    """
    out = {}
    for k, v in sd.items():
        head, _, rest = k.partition(".")
        if head not in prefixes or not rest:
            raise ValueError(f"unexpected fastai key {k!r}: expected keys starting with {sorted(prefixes)}")
        m = _RAW.fullmatch(rest)
        if m:
            rest = f"{m[1]}.module.{m[2]}"
        else:
            m = _DROPPED.fullmatch(rest)
            if m and f"{head}.{m[1]}.{m[2]}_raw" in sd:
                continue
        out[f"{prefixes[head]}.{rest}"] = v
    return out


def from_fastai_state_dict(model: LanguageModel | TextClassifier, sd: dict[str, torch.Tensor]):
    """Load a fastai 2.x state dict (`SequentialRNN(AWD_LSTM, LinearDecoder)` or the text classifier) into ours."""
    if isinstance(model, LanguageModel):
        prefixes = {"0": "encoder", "1": "decoder"}
    elif isinstance(model, TextClassifier):
        prefixes = {"0": "encoder", "1": "head"}
    else:
        raise TypeError(f"from_fastai_state_dict: expected LanguageModel or TextClassifier, got {type(model).__name__}")
    return load_by_name(model, map_fastai_keys(sd, prefixes), source="fastai state dict")


# ------------------------------------------------------------------------------------ pretrained language model
def match_embeds(emb: torch.Tensor, bias: torch.Tensor | None, old_itos: list[str], new_itos: list[str]):
    """fastai's `match_embeds`: rows of a new vocab's embedding (and decoder bias) from a pretrained one.

    A word of the new vocab found in the old one keeps its row (the last one if the old vocab repeats it);
    an unknown word gets the mean row (mean bias). Returns (new_emb, new_bias, n_found).
    """
    old_o2i = {w: i for i, w in enumerate(old_itos)}
    idx = torch.tensor([old_o2i.get(w, -1) for w in new_itos], dtype=torch.long)  # (new_vocab,)
    found = idx >= 0
    new_emb = emb.mean(0).expand(len(new_itos), emb.size(1)).clone()
    new_emb[found] = emb[idx[found]]
    new_bias = None
    if bias is not None:
        new_bias = bias.mean(0).expand(len(new_itos)).clone()
        new_bias[found] = bias[idx[found]]
    return new_emb, new_bias, int(found.sum())


class LoadedLM(NamedTuple):
    """What `load_fastai_lm` returns: the model, its vocab, and the share of that vocab found pretrained."""

    model: LanguageModel
    itos: list[str]
    coverage: float


def _sizes_from(sd: dict[str, torch.Tensor]) -> dict[str, int]:
    emb = sd["encoder.encoder.weight"]
    n_layers = len({m[1] for k in sd if (m := re.match(r"encoder\.rnns\.(\d+)\.", k))})
    if n_layers == 0:
        raise ValueError("no LSTM layers (encoder.rnns.N) in the weights")
    sizes = dict(emb_sz=emb.size(1), n_layers=n_layers)
    if n_layers > 1:  # with one layer there is no hidden size of its own
        sizes["n_hid"] = sd["encoder.rnns.0.module.weight_hh_l0"].size(1)
    return sizes


def load_fastai_lm(weights_path: str | Path, itos_path: str | Path | None = None, vocab=None,
                   cfg: AWDLSTMConfig | None = None) -> LoadedLM:
    """Load a pretrained AWD-LSTM language model (fastai's `LMLearner.load_pretrained`, but by key name).

    weights_path: fastai's `lstm_fwd.pth` / `lstm_bwd.pth` (optionally `{"model": ..., "opt": ...}`), or one
    of our checkpoints (`save_model`). itos_path: fastai's `itos_wt103.pkl`, or a JSON vocab; optional for
    our checkpoints (read from the metadata beside the weights). vocab: the new vocab (list of strings or
    an object with `.itos`): rows are matched as fastai's `match_embeds`. cfg: dropouts etc. (sizes are
    read from the weights and must agree); default fastai's `awd_lstm_lm_config`.
    """
    sd = read_weights(weights_path)
    if "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    saved_cfg, old_itos = None, None
    meta = read_meta(weights_path, required=False)  # present for our checkpoints
    if meta is not None or all(k.startswith(("encoder.", "decoder.")) for k in sd):
        kind = meta.get("kind") if meta is not None else "language_model"
        if kind != "language_model":
            hint = "load_encoder" if kind == "encoder" else "load_model"
            raise ValueError(f"{weights_path}: holds a saved {kind}, not a language model (use {hint})")
        if meta is not None:
            check_digest(weights_path, sd, meta.get("sha256"))
            saved_cfg = AWDLSTMConfig.from_dict(meta["config"])
            old_itos = meta.get("vocab")
    else:
        sd = map_fastai_keys(sd, {"0": "encoder", "1": "decoder"})
    if itos_path is not None:
        old_itos = _read_itos(itos_path)
    if old_itos is None:
        raise ValueError(f"{weights_path}: no vocab saved with these weights; pass itos_path")
    if "encoder.encoder.weight" not in sd:
        raise ValueError(f"{weights_path}: no embedding (0.encoder.weight / encoder.encoder.weight) in the weights")
    emb, bias = sd["encoder.encoder.weight"], sd.get("decoder.decoder.bias")
    if emb.size(0) != len(old_itos):
        raise ValueError(f"vocab has {len(old_itos)} tokens but the embedding has {emb.size(0)} rows")
    sizes = _sizes_from(sd)
    cfg = cfg if cfg is not None else (saved_cfg if saved_cfg is not None else lm_config(**sizes))
    wrong = {k: (getattr(cfg, k), v) for k, v in sizes.items() if getattr(cfg, k) != v}
    if wrong:
        raise ValueError("cfg does not match the weights: " + ", ".join(f"{k}={a} (weights: {b})"
                                                                       for k, (a, b) in wrong.items()))
    cfg = replace(cfg, out_bias=bias is not None)
    itos, coverage = list(old_itos), 1.0
    if vocab is not None:
        itos = list(vocab.itos if hasattr(vocab, "itos") else vocab)
        if not itos:
            raise ValueError("the new vocab is empty")
        new_emb, new_bias, n_found = match_embeds(emb, bias, old_itos, itos)
        coverage = n_found / len(itos)
        sd = {k: v for k, v in sd.items() if k not in ("encoder.encoder_dp.emb.weight", "decoder.decoder.weight")}
        sd["encoder.encoder.weight"] = new_emb
        if not cfg.tie_weights:  # fastai gives an untied decoder the matched embedding too
            sd["decoder.decoder.weight"] = new_emb.clone()
        if new_bias is not None:
            sd["decoder.decoder.bias"] = new_bias
    model = LanguageModel(len(itos), cfg)
    load_by_name(model, sd, source=str(weights_path))
    return LoadedLM(model, itos, coverage)


PRETRAINED_HELP = ("none (random weights), wt103 (fastai's WikiText-103 model, downloaded), or PATH: a folder with "
                   "lstm_fwd.pth + itos_wt103.pkl, a .pth file beside its .pkl, or our lm.pt / LM run folder")


def find_pretrained(spec: str, backwards: bool = False, progress: bool = True) -> tuple[Path, Path | None]:
    """Where the starting weights of a language model are: `spec` is 'wt103' (fastai's WikiText-103 model,
    downloaded and cached), a folder (lm.pt, or one .pth + one itos .pkl) or a weights file.
    Returns (weights file, itos .pkl file or None when the JSON beside the weights has the vocab)."""
    if spec == "wt103":
        from awdlstm.data.download import ChecksumError, DownloadError, UnsafeArchiveError, download_wt103

        try:
            return download_wt103("bwd" if backwards else "fwd", progress=progress)
        except (DownloadError, ChecksumError, UnsafeArchiveError) as e:
            raise type(e)(f"--pretrained wt103: {e}") from None
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"--pretrained {spec}: no such file or folder (or use none / wt103)")
    if path.is_dir():
        if (path / "lm.pt").is_file():
            return path / "lm.pt", None
        pth, pkl = sorted(path.glob("*.pth")), sorted(path.glob("*.pkl"))
        if len(pth) != 1 or len(pkl) != 1:
            raise FileNotFoundError(f"--pretrained {spec}: expected one .pth and one .pkl file (or lm.pt) in it")
        return pth[0], pkl[0]
    if path.with_suffix(".json").is_file():
        return path, None
    pkl = sorted(path.parent.glob("*.pkl"))
    if len(pkl) != 1:
        raise FileNotFoundError(f"--pretrained {spec}: put exactly one itos .pkl file beside it")
    return path, pkl[0]
