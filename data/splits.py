"""Which documents train and which validate (fastai's `RandomSplitter`, or the data's own split), and
random subsets of them (the recipes' `lm_docs`, `train_docs`, `valid_docs`)."""
from __future__ import annotations

import numpy as np


def sample(idxs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most `n` of `idxs` at random, in their original order (`n <= 0`: all of them).

    >>> sample(np.arange(10), 3, np.random.default_rng(0)).tolist()
    [5, 6, 9]
    """
    if n <= 0 or n >= len(idxs):
        return np.asarray(idxs)
    return np.sort(rng.choice(np.asarray(idxs), n, replace=False))


def random_split(n: int, valid_pct: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """fastai's RandomSplitter: a random `valid_pct` of range(n) for validation, the rest for training."""
    if not 0 < valid_pct < 1:
        raise ValueError(f"valid_pct must be in (0, 1), got {valid_pct}")
    perm = rng.permutation(n)
    n_valid = valid_size(n, valid_pct)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


def valid_size(n: int, valid_pct: float) -> int:
    """How many of `n` documents `random_split` keeps for validation: `int(valid_pct * n)`, at least 1."""
    return max(1, int(valid_pct * n))


def split_docs(is_valid: list[bool] | None, n: int, valid_pct: float, rng: np.random.Generator,
               n_train: int = 0, n_valid: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) document indices: the data's own split (`is_valid`) or a random `valid_pct` one, then
    at most `n_train` / `n_valid` of each at random (0: all)."""
    if is_valid is not None:
        flags = np.asarray(is_valid, dtype=bool)
        train, valid = np.flatnonzero(~flags), np.flatnonzero(flags)
    else:
        train, valid = random_split(n, valid_pct, rng)
    if len(train) == 0 or len(valid) == 0:
        raise ValueError(f"the split left {len(train)} training and {len(valid)} validation documents; both are "
                         "needed (check the validation column, or the folders train/ and test/)")
    return sample(train, n_train, rng), sample(valid, n_valid, rng)
