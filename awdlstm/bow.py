"""The bag-of-words baseline as an ensemble member: a run folder like a classifier's, and predictions of new texts.

An RNN language model's classifier and a bag-of-n-grams model err on different reviews (Mesnil et al. 2014
averaged the two for IMDb); averaging their probabilities is the chapter's forward + backward ensemble with one
more member. `train_bow` fits NB-weighted logistic regression (awdlstm/baseline.py) on the same training reviews
as the classifier and writes:

    config.json        stage "baseline", its settings and results (as a classifier run's)
    bow.npz            the model: the n-grams' keys, the NB ratios r, the weights w (numpy, no pickle)
    bow.json           the token table the keys are written in, the n-gram order, the key base
    labels.json        the label vocab (as a classifier's)
    valid_preds.json   the validation predictions, in a classifier's format (scripts/ensemble.py reads both)

`load_bow` reads it back; `BowModel.predict_texts` tokenizes new texts as in training. `load_member` reads a
bag-of-words or a classifier run folder: `scripts/predict.py --model` takes both and averages them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from awdlstm import runs
from awdlstm.baseline import NBLogistic, csr, ngram_features, ngram_keys, rows
from awdlstm.data import LabelVocab, Texts
from awdlstm.predict import Classifier, load_classifier, save_valid_preds
from awdlstm.tokenizers.atomic import read_json, write_json
from awdlstm.tokenizers.corpus import TokenizedCorpus, tokenize_corpus

WEIGHTS, TABLE = "bow.npz", "bow.json"


@dataclass
class BowModel:
    """A fitted NB-weighted logistic regression with what it needs to read new texts."""

    types: list[str]     # token table: token i of the training corpus
    keys: np.ndarray     # sorted n-gram keys, one per feature
    model: NBLogistic
    ngrams: int
    labels: LabelVocab
    run_dir: Path | None = None
    max_tokens: int = 0  # each text cut as in training (> 0: its first tokens, < 0: its last, 0: all)

    @property
    def base(self) -> int:
        return len(self.types) + 2  # ids 0..len-1 are known tokens, len is any unknown one

    def features(self, ids: np.ndarray, offsets: np.ndarray) -> torch.Tensor:
        """The binarized features of documents (ids in this model's token table, len(types) = unknown)."""
        docs, keys = ngram_keys(ids, offsets, self.ngrams, self.base)
        col = np.searchsorted(self.keys, keys)
        found = (col < len(self.keys)) & (self.keys[np.minimum(col, len(self.keys) - 1)] == keys)
        pairs = np.unique(docs[found] * len(self.keys) + col[found])
        row, col = pairs // len(self.keys), pairs % len(self.keys)
        n_docs = len(offsets) - 1
        crow = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(np.bincount(row, minlength=n_docs), out=crow[1:])
        return csr(torch.from_numpy(crow), torch.from_numpy(col), torch.ones(len(col)), (n_docs, len(self.keys)))

    @cached_property
    def index(self) -> dict[str, int]:
        """token -> its id in this model's table (built once: predict.py asks for every block)."""
        return {t: i for i, t in enumerate(self.types)}

    def predict_corpus(self, corpus: TokenizedCorpus) -> torch.Tensor:
        """Class probabilities (n_docs, 2) of tokenized documents."""
        lookup = np.array([self.index.get(t, len(self.types)) for t in corpus.types], dtype=np.int64)
        p = self.model.predict_proba(self.features(lookup[corpus.ids], corpus.offsets)).float()
        return torch.stack([1 - p, p], dim=1)

    def predict_texts(self, texts: list[str]) -> torch.Tensor:
        """Class probabilities (n_texts, 2) of raw texts, tokenized as in training."""
        corpus = tokenize_corpus(texts, progress=False)
        if self.max_tokens:
            corpus = corpus.subset(np.arange(len(corpus)), self.max_tokens)
        return self.predict_corpus(corpus)

    def save(self, run_dir: Path) -> None:
        tmp = run_dir / (WEIGHTS + ".tmp.npz")
        np.savez(tmp, keys=self.keys, r=self.model.r.numpy(), w=self.model.w.detach().numpy())
        tmp.replace(run_dir / WEIGHTS)  # atomic: a half-written model never has the final name
        write_json(run_dir / TABLE, {"ngrams": self.ngrams, "max_tokens": self.max_tokens, "types": self.types})
        self.labels.save(run_dir / "labels.json")


def is_bow_run(run: str | Path) -> bool:
    return (Path(run) / WEIGHTS).is_file()


def load_bow(run: str | Path) -> BowModel:
    """A bag-of-words run folder -> `BowModel` (numpy arrays and JSON only: nothing is unpickled)."""
    weights = runs.run_file(run, WEIGHTS)
    table = read_json(runs.run_file(run, TABLE))
    with np.load(weights, allow_pickle=False) as z:
        keys, r, w = z["keys"], torch.from_numpy(z["r"]), torch.from_numpy(z["w"])
    if not (len(keys) == len(r) == len(w) - 1) or not isinstance(table, dict) or "types" not in table:
        raise ValueError(f"{weights}: not a bag-of-words model (keys, r and w of matching lengths)")
    labels = LabelVocab.load(runs.run_file(run, "labels.json"))
    return BowModel(list(table["types"]), keys, NBLogistic(r, w), int(table["ngrams"]), labels, Path(run),
                    int(table.get("max_tokens", 0)))


@dataclass
class BowResult:
    run_dir: Path
    model: BowModel
    accuracy: float
    seconds: float


def train_bow(texts: Texts, corpus: TokenizedCorpus, train_idx: np.ndarray, valid_idx: np.ndarray,
              run_dir: str | Path | None = None, *, ngrams: int = 3, min_df: int = 1, alpha: float = 1.0,
              l2: float = 1e-5, max_iter: int = 100, max_tokens: int = 0, settings: dict | None = None) -> BowResult:
    """Fit the bag-of-words member on `train_idx` of the tokenized `texts` (`corpus`), measure it on
    `valid_idx` (the classifier's split, so the ensemble averages predictions of the same reviews), and write
    its run folder (default runs/bow-<date>-<time>)."""
    t0 = time.time()
    if texts.labels is None:
        raise ValueError("the bag-of-words member needs labelled texts")
    labels = LabelVocab.build([texts.labels[i] for i in train_idx])
    if len(labels) != 2:
        raise ValueError(f"the bag-of-words member handles two labels, the training texts have {labels.itos}")
    y = torch.tensor(labels.encode(texts.labels))
    run_dir = Path(run_dir or runs.new_run_dir("bow"))
    run_dir.mkdir(parents=True, exist_ok=True)
    train_idx, valid_idx = np.asarray(train_idx), np.asarray(valid_idx)
    sub = corpus.subset(np.concatenate([train_idx, valid_idx]), max_tokens)  # only the split's documents
    train, valid = np.arange(len(train_idx)), np.arange(len(train_idx), len(sub))
    feats = ngram_features(sub.ids, sub.offsets, ngrams, train, min_df, base=len(sub.types) + 2)
    nb = NBLogistic.fit(rows(feats.x, train), y[train_idx], alpha, l2, max_iter)
    model = BowModel(list(sub.types), feats.keys, nb, ngrams, labels, run_dir, max_tokens)
    p = nb.predict_proba(rows(feats.x, valid)).float()
    probs = torch.stack([1 - p, p], dim=1)
    targets = y[valid_idx]
    acc = (probs.argmax(-1) == targets).float().mean().item()
    model.save(run_dir)
    save_valid_preds(run_dir, valid_idx.tolist(), targets.tolist(), probs)
    seconds = time.time() - t0
    config = {"stage": "baseline", "model": "NB-weighted logistic regression", "ngrams": ngrams, "min_df": min_df,
              "alpha": alpha, "l2": l2, "max_iter": max_iter, "max_tokens": max_tokens, **(settings or {}),
              "data_digest": runs.data_digest(texts.texts, texts.labels), "n_texts": len(texts),
              "results": {"accuracy": acc, "n_features": feats.n_features, "n_train": len(train_idx),
                          "n_valid": len(valid_idx), "total_time_s": round(seconds, 1)}}
    runs.save_config(run_dir, config)
    return BowResult(run_dir, model, acc, seconds)


def load_member(run: str | Path) -> Classifier | BowModel:
    """An ensemble member's run folder: a bag-of-words run (bow.npz) -> `BowModel`, else a classifier run ->
    `Classifier` (scripts/predict.py --model takes either; `predict_stream.predict_blocks` averages them)."""
    return load_bow(run) if is_bow_run(run) else load_classifier(run)
