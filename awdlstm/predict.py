"""Classify texts with a trained classifier (chapter 10's `learn.predict` / `get_preds` on new texts), and
the book's forward + backward ensemble: the mean of the models' probabilities.

    model = load_classifier("runs/clas-20261125-221500")
    labels, probs = predict_texts([model], ["A wonderful film.", "Two hours I will never get back."])
    ensemble_accuracy(["runs/clas-fwd", "runs/clas-bwd"])   # on the validation split both were trained with
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from awdlstm.checkpoint import load_model, read_meta
from awdlstm.checkpoint_check import check_inside, check_labels, check_run_config
from awdlstm.classifier import TextClassifier
from awdlstm.data import ClasLoader, LabelVocab
from awdlstm.precision import resolve_precision
from awdlstm.quantize import quantize_int8
from awdlstm.runs import read_config, run_file
from awdlstm.tokenizers.atomic import read_json, write_json
from awdlstm.tokenizers.corpus import tokenize_corpus
from awdlstm.tokenizers.vocab import Vocab


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
    """A train_classifier run folder -> `Classifier` (classifier.pt with its vocab, labels.json, config.json).

    A folder from someone else is checked before anything is built (awdlstm/checkpoint_check.py): no file
    leads outside it, every field of classifier.json, labels.json and the fields of config.json read here."""
    weights = run_file(run, "classifier.pt")
    for name in ("classifier.pt", "classifier.json", "labels.json", "config.json"):
        if (Path(run) / name).exists():
            check_inside(run, name)
    config = check_run_config(read_config(run), Path(run) / "config.json")
    labels = LabelVocab(check_labels(read_json(run_file(run, "labels.json")), Path(run) / "labels.json"))
    n_class = (read_meta(weights).get("classifier") or {}).get("n_class")  # read_meta checks every field
    if n_class is not None and len(labels) != n_class:
        raise ValueError(f"{run}: labels.json has {len(labels)} labels but {weights.name} predicts {n_class} "
                         "classes (files from different runs?)")
    model, itos = load_model(weights)
    if not isinstance(model, TextClassifier) or itos is None:
        raise ValueError(f"{weights} is not a classifier saved with its vocab")
    return Classifier(model, Vocab(itos), labels, bool(config.get("backwards")),
                      int(config.get("recipe", {}).get("max_tokens", 0)), Path(run))


@torch.no_grad()
def predict_ids(model: TextClassifier, ids: list, bs: int = 64, backwards: bool = False,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Class probabilities (n_docs, n_class) of numericalized documents, in their order (fastai's
    `learn.get_preds`). Batches follow the ClasLoader's validation order (longest first, little padding);
    `restore_order` undoes it. Padded to whole bptt chunks, so a document's probabilities do not depend on
    the other documents in its batch: they are those of training's computation on it alone (its own text's
    last `max_len` tokens pooled, `SentenceEncoder(whole_chunks=True)`)."""
    dl = ClasLoader(ids, None, bs=bs, seq_len=model.encoder.bptt, shuffle=False, backwards=backwards,
                    whole_chunks=True)
    model.eval().to(device)
    probs = []
    for x, _ in dl:
        model.reset()
        probs.append(model(x.to(device), whole_chunks=True)[0].float().softmax(-1).cpu())  # (bs, n_class)
    model.reset()
    return dl.restore_order(torch.cat(probs))


def predict(model: TextClassifier, vocab: Vocab, texts: list[str], bs: int = 64, backwards: bool = False,
            device: torch.device | str = "cpu", max_tokens: int = 0) -> torch.Tensor:
    """Class probabilities (n_texts, n_class) of raw texts, in the order of `texts`: tokenized as in training;
    `max_tokens` cuts every text as the classifier was trained (> 0: its first tokens, < 0: its last)."""
    corpus = tokenize_corpus(texts, progress=False)
    ids = corpus.subset(np.arange(len(texts)), max_tokens).numericalize(vocab)
    return predict_ids(model, ids, bs=bs, backwards=backwards, device=device)


def predict_texts(models: list[Classifier], texts: list[str], bs: int = 64, device: torch.device | str = "cpu",
                  precision: str = "fp32") -> tuple[list[str], torch.Tensor]:
    """(predicted label per text, mean probabilities (n_texts, n_class)) over `models` (the ensemble).

    `precision` 'int8' runs each model's LSTMs in 8-bit integers on the CPU (awdlstm/quantize.py); 'bf16' runs
    the models under bf16 autocast (a GPU, or a CPU with native bf16: refused on others, see precision.py)."""
    if precision not in ("fp32", "bf16", "int8"):
        raise ValueError(f"precision must be fp32, bf16 or int8, got {precision!r}")
    if precision == "int8" and torch.device(device).type != "cpu":
        raise ValueError(f"--precision int8 runs on the CPU only (got --device {torch.device(device).type})")
    autocast = resolve_precision("bf16" if precision == "bf16" else "fp32", torch.device(device)).autocast
    if not models:
        raise ValueError("predict_texts needs at least one classifier")
    probs = []
    for m in models:
        if m.labels.itos != models[0].labels.itos:
            raise ValueError(f"{m.run_dir} predicts the labels {m.labels.itos}, the first model "
                             f"{models[0].labels.itos}")
        model = quantize_int8(m.model) if precision == "int8" else m.model
        with autocast():
            probs.append(predict(model, m.vocab, texts, bs=bs, backwards=m.backwards, device=device,
                                 max_tokens=m.max_tokens))
    mean = torch.stack(probs).mean(0)
    return [models[0].labels.itos[i] for i in mean.argmax(-1).tolist()], mean


# ---------------------------------------------------------------- the ensemble on the validation split

VALID_PREDS = "valid_preds.json"


def save_valid_preds(run_dir: str | Path, doc_index: list[int], targets: list[int], probs: torch.Tensor) -> Path:
    """The validation predictions of a classifier run (`train_classifier` writes them): which documents of the
    source, their label ids, each one's class probabilities. `ensemble_accuracy` averages runs' files."""
    path = Path(run_dir) / VALID_PREDS
    write_json(path, {"doc_index": [int(i) for i in doc_index], "targets": [int(t) for t in targets],
                      "probs": [[round(p, 6) for p in row] for row in probs.tolist()]})
    return path


def ensemble_accuracy(run_dirs: list[str | Path]) -> dict:
    """The book's forward + backward ensemble, measured: each classifier run's validation accuracy and that of
    the mean of their probabilities (the runs must have predicted the same validation documents)."""
    if not run_dirs:
        raise ValueError("ensemble_accuracy needs at least one classifier run")
    first, probs, each = None, [], {}
    for run in run_dirs:
        path = run_file(run, VALID_PREDS)
        saved = read_json(path)
        if not isinstance(saved, dict) or {"doc_index", "targets", "probs"} - set(saved) or \
                not len(saved["probs"]) == len(saved["targets"]) == len(saved["doc_index"]):
            raise ValueError(f"{path}: not a run's validation predictions (doc_index, targets and probs, one each "
                             "per document)")
        if first is None:
            first = saved
        elif saved["doc_index"] != first["doc_index"] or saved["targets"] != first["targets"]:
            raise ValueError(f"{path} holds other validation documents than {run_file(run_dirs[0], VALID_PREDS)}: "
                             "the runs were trained on different splits or texts")
        p = torch.tensor(saved["probs"])
        targets = torch.tensor(saved["targets"])
        each[str(run)] = (p.argmax(-1) == targets).float().mean().item()
        probs.append(p)
    mean = torch.stack(probs).mean(0)
    return {"each": each, "ensemble": (mean.argmax(-1) == targets).float().mean().item(), "n_valid": len(targets)}
