"""Classify texts with a trained classifier (chapter 10's `learn.predict` / `get_preds` on new texts), and
the book's forward + backward ensemble: the mean of the models' probabilities.

    model = load_classifier("runs/clas-20261125-221500")
    labels, probs = predict_texts([model], ["A wonderful film.", "Two hours I will never get back."])
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from awdlstm.checkpoint import load_model
from awdlstm.classifier import TextClassifier
from awdlstm.quantize import quantize_int8
from awdlstm.runs import read_config, run_file
from data import ClasLoader, LabelVocab
from tokenizers.corpus import tokenize_corpus
from tokenizers.vocab import Vocab


@dataclass
class Classifier:
    """A trained classifier run: the model, its vocab and labels, how it reads (direction, max tokens)."""

    model: TextClassifier
    vocab: Vocab
    labels: LabelVocab
    backwards: bool = False
    max_tokens: int = 0
    run_dir: Path | None = None


def load_classifier(run: str | Path) -> Classifier:
    """A train_classifier run folder -> `Classifier` (classifier.pt with its vocab, labels.json, config.json)."""
    weights = run_file(run, "classifier.pt")
    labels = LabelVocab.load(run_file(run, "labels.json"))
    config = read_config(run)
    model, itos = load_model(weights)
    if not isinstance(model, TextClassifier) or itos is None:
        raise ValueError(f"{weights} is not a classifier saved with its vocab")
    if len(labels) != model.n_class:
        raise ValueError(f"{run}: labels.json has {len(labels)} labels but {weights.name} predicts {model.n_class} "
                         "classes (files from different runs?)")
    return Classifier(model, Vocab(itos), labels, bool(config.get("backwards")),
                      int(config.get("recipe", {}).get("max_tokens", 0)), Path(run))


@torch.no_grad()
def predict(model: TextClassifier, vocab: Vocab, texts: list[str], bs: int = 64, backwards: bool = False,
            device: torch.device | str = "cpu", max_tokens: int = 0) -> torch.Tensor:
    """Class probabilities (n_texts, n_class) in the order of `texts` (fastai's `learn.get_preds` on a test set).

    Batches follow the ClasLoader's validation order (longest first, little padding); `restore_order` undoes it.
    `max_tokens > 0` cuts every text to its first tokens, as the classifier was trained.
    """
    corpus = tokenize_corpus(texts, progress=False)
    ids = corpus.subset(np.arange(len(texts)), max_tokens).numericalize(vocab)
    dl = ClasLoader(ids, None, bs=bs, seq_len=model.encoder.bptt, shuffle=False, backwards=backwards)
    model.eval().to(device)
    probs = []
    for x, _ in dl:
        model.reset()
        probs.append(model(x.to(device))[0].float().softmax(-1).cpu())  # (bs, n_class)
    model.reset()
    return dl.restore_order(torch.cat(probs))


def predict_texts(models: list[Classifier], texts: list[str], bs: int = 64, device: torch.device | str = "cpu",
                  precision: str = "fp32") -> tuple[list[str], torch.Tensor]:
    """(predicted label per text, mean probabilities (n_texts, n_class)) over `models` (the ensemble).

    `precision` 'int8' runs each model's LSTMs in 8-bit integers on the CPU (awdlstm/quantize.py)."""
    if precision not in ("fp32", "int8"):
        raise ValueError(f"precision must be fp32 or int8, got {precision!r}")
    if precision == "int8" and torch.device(device).type != "cpu":
        raise ValueError(f"--precision int8 runs on the CPU only (got --device {torch.device(device).type})")
    if not models:
        raise ValueError("predict_texts needs at least one classifier")
    probs = []
    for m in models:
        if m.labels.itos != models[0].labels.itos:
            raise ValueError(f"{m.run_dir} predicts the labels {m.labels.itos}, the first model "
                             f"{models[0].labels.itos}")
        model = quantize_int8(m.model) if precision == "int8" else m.model
        probs.append(predict(model, m.vocab, texts, bs=bs, backwards=m.backwards, device=device,
                             max_tokens=m.max_tokens))
    mean = torch.stack(probs).mean(0)
    return [models[0].labels.itos[i] for i in mean.argmax(-1).tolist()], mean
