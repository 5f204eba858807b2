"""The bag-of-n-grams baseline ULMFiT is measured against: NB-weighted logistic regression.

Wang & Manning (2012), "Baselines and Bigrams", scale every binarized n-gram feature by its naive Bayes
log-count ratio r = log((p / |p|_1) / (q / |q|_1)), where p and q count the positive and the negative
training documents holding the n-gram (plus a smoothing `alpha`), then fit a linear classifier on the scaled
features (their NBSVM; here logistic regression, as the ULMFiT paper's IMDb table compares). The whole
corpus of n-grams is a sparse matrix (rows = documents, columns = n-grams seen in training), the model a
weight per column, fitted full batch with L-BFGS on the L2-regularised mean log loss.

    >>> ids, offsets = np.array([0, 1, 2, 0, 1]), np.array([0, 3, 5])   # "a b c", "a b"
    >>> feats = ngram_features(ids, offsets, n_max=2, train=np.array([0, 1]))
    >>> feats.n_features, feats.x.to_dense().tolist()
    (5, [[1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0, 0.0]])
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class NGramFeatures:
    """Binarized n-gram features: `x` (documents x n-grams, sparse CSR, 0/1), n-grams seen in training only."""

    x: torch.Tensor
    n_features: int
    keys: np.ndarray | None = None  # the columns' n-gram keys (sorted), to featurize new documents alike


def ngram_keys(ids: np.ndarray, offsets: np.ndarray, n_max: int,
               base: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every 1..n_max-gram of every document as (document index, int64 key); no n-gram crosses documents.

    A key is the n-gram's token ids + 1 written as digits in base (V + 1), so n-grams of different
    lengths never share a key (`base` > every id + 1; default: the largest id + 2).
    """
    ids = np.asarray(ids, dtype=np.int64)
    base = int(ids.max(initial=0)) + 2 if base is None else base
    if len(ids) and int(ids.max()) + 1 >= base:
        raise ValueError(f"token id {int(ids.max())} does not fit n-gram keys in base {base}")
    if base ** n_max >= 2**63:
        raise ValueError(f"n_max={n_max} n-grams over {base - 1} token ids do not fit in an int64 key")
    lengths = np.diff(offsets)
    doc_of = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    docs, keys = [], []
    key = np.zeros(len(ids), dtype=np.int64)
    for n in range(1, n_max + 1):
        m = len(ids) - n + 1
        if m <= 0:
            break
        key = key[:m] * base + ids[n - 1:] + 1  # the n-gram starting at each position
        same_doc = doc_of[:m] == doc_of[n - 1:]
        docs.append(doc_of[:m][same_doc])
        keys.append(key[same_doc])
    return np.concatenate(docs), np.concatenate(keys)


def ngram_features(ids: np.ndarray, offsets: np.ndarray, n_max: int, train: np.ndarray,
                   min_df: int = 1, base: int | None = None) -> NGramFeatures:
    """The binarized document x n-gram matrix of a corpus (`ids`, `offsets`: document i is
    ids[offsets[i]:offsets[i+1]]); its columns are the n-grams found in at least `min_df` `train` documents,
    numbered in key order."""
    n_docs = len(offsets) - 1
    docs, keys = ngram_keys(ids, offsets, n_max, base)
    uniq, inv = np.unique(keys, return_inverse=True)
    pairs = np.unique(docs * len(uniq) + inv.reshape(-1))  # each (document, n-gram) once: binarized
    row, col = pairs // len(uniq), pairs % len(uniq)
    is_train = np.zeros(n_docs, dtype=bool)
    is_train[np.asarray(train, dtype=np.int64)] = True
    keep = np.bincount(col[is_train[row]], minlength=len(uniq)) >= min_df
    new_col = np.cumsum(keep) - 1
    row, col = row[keep[col]], new_col[col[keep[col]]]  # still sorted by row, then column
    crow = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=n_docs), out=crow[1:])
    x = csr(torch.from_numpy(crow), torch.from_numpy(col), torch.ones(len(col)), (n_docs, int(keep.sum())))
    return NGramFeatures(x, int(keep.sum()), uniq[keep])


def csr(crow, col, values, size: tuple[int, int]) -> torch.Tensor:
    """A CSR matrix from its three arrays (torch's beta-state warning silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)


def rows(x: torch.Tensor, idxs: np.ndarray) -> torch.Tensor:
    """Rows `idxs` of a CSR matrix, as a CSR matrix."""
    crow, col, val = x.crow_indices().numpy(), x.col_indices().numpy(), x.values().numpy()
    idxs = np.asarray(idxs, dtype=np.int64)
    starts, ends = crow[idxs], crow[idxs + 1]
    new_crow = np.zeros(len(idxs) + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=new_crow[1:])
    take = np.concatenate([np.arange(a, b) for a, b in zip(starts.tolist(), ends.tolist())] or [np.zeros(0, int)])
    return csr(torch.from_numpy(new_crow), torch.from_numpy(col[take]), torch.from_numpy(val[take]),
               (len(idxs), x.shape[1]))


def scale_columns(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """x with column j multiplied by r[j] (CSR in, CSR out)."""
    return csr(x.crow_indices(), x.col_indices(), x.values() * r[x.col_indices()], tuple(x.shape))


def transpose_csr(x: torch.Tensor) -> torch.Tensor:
    """The transpose of a CSR matrix, as CSR (for the gradient X^T g)."""
    return x.to_sparse_coo().t().coalesce().to_sparse_csr()


def nb_ratios(x: torch.Tensor, y: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Wang & Manning's log-count ratio per feature: log((p / |p|_1) / (q / |q|_1)) with
    p = alpha + the feature summed over positive documents (y = 1), q the same over negative ones."""
    y = y.to(x.dtype)
    xt = transpose_csr(x)
    p = alpha + xt @ y
    q = alpha + xt @ (1 - y)
    return torch.log(p / p.sum()) - torch.log(q / q.sum())


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-5, max_iter: int = 100) -> torch.Tensor:
    """Logistic regression on a sparse matrix: weights w (the last one the bias) minimising
    mean(log(1 + exp(-s * (x @ w[:-1] + w[-1])))) + l2 / 2 * |w[:-1]|^2 with s = +-1, full-batch L-BFGS.
    The gradient is written out: x^T (-s * sigmoid(-s * z)) / n + l2 * w."""
    n = x.shape[0]
    s = 2 * y.to(x.dtype) - 1
    xt = transpose_csr(x)
    w = torch.zeros(x.shape[1] + 1, dtype=x.dtype)
    opt = torch.optim.LBFGS([w], lr=1, max_iter=max_iter, history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        z = x @ w[:-1] + w[-1]
        loss = torch.nn.functional.softplus(-s * z).mean() + l2 / 2 * w[:-1].square().sum()
        g = -s * torch.sigmoid(-s * z) / n  # d loss / d z
        w.grad = torch.cat([xt @ g + l2 * w[:-1], g.sum().reshape(1)])
        return loss

    opt.step(closure)
    return w


def predict_proba(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """P(y = 1) of every row of x under weights w (bias last)."""
    return torch.sigmoid(x @ w[:-1] + w[-1])


@dataclass
class NBLogistic:
    """A fitted NB-weighted logistic regression: the ratios `r` and the weights `w` (bias last)."""

    r: torch.Tensor
    w: torch.Tensor

    @classmethod
    def fit(cls, x: torch.Tensor, y: torch.Tensor, alpha: float = 1.0, l2: float = 1e-5,
            max_iter: int = 100) -> NBLogistic:
        """NB ratios from (x, y), then logistic regression on x scaled by them."""
        r = nb_ratios(x, y, alpha)
        return cls(r, fit_logistic(scale_columns(x, r), y, l2, max_iter))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return predict_proba(scale_columns(x, self.r), self.w)


@dataclass
class BaselineResult:
    """What `nb_baseline` measured: validation accuracy, the number of features, seconds per step."""

    accuracy: float
    n_features: int
    n_train: int
    n_valid: int
    seconds: dict


def nb_baseline(ids: np.ndarray, offsets: np.ndarray, labels: list, is_valid: list[bool], ngrams: int = 3,
                min_df: int = 1, alpha: float = 1.0, l2: float = 1e-5, max_iter: int = 100) -> BaselineResult:
    """NB-weighted logistic regression on 1..`ngrams`-grams of numericalized documents `(ids, offsets)`,
    trained on the documents whose `is_valid` is False, measured on the others (two labels)."""
    import time

    t0 = time.time()
    flags = np.asarray(is_valid, dtype=bool)
    train, valid = np.flatnonzero(~flags), np.flatnonzero(flags)
    classes = sorted(set(labels))
    if len(classes) != 2 or len(train) == 0 or len(valid) == 0:
        raise ValueError(f"the baseline needs two labels and both splits, got labels {classes}, {len(train)} "
                         f"training and {len(valid)} validation documents")
    y = torch.tensor([classes.index(lab) for lab in labels])
    feats = ngram_features(ids, offsets, ngrams, train, min_df)
    t1 = time.time()
    model = NBLogistic.fit(rows(feats.x, train), y[train], alpha, l2, max_iter)
    acc = ((model.predict_proba(rows(feats.x, valid)) > 0.5).long() == y[valid]).float().mean().item()
    return BaselineResult(acc, feats.n_features, len(train), len(valid),
                          {"features": round(t1 - t0, 1), "fit_predict": round(time.time() - t1, 1)})
