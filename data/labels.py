"""Labels as a person types them (chapter 10, "Creating the Classifier DataLoaders": the labels of the texts
become the classifier's categories, fastai's `CategoryBlock`).

A label is compared as a string, so ` pos`, `pos ` and `pos` would be three classes and `Pos` a fourth. Before
a classifier is trained:

* surrounding whitespace is stripped from every label (`strip_labels`, called by the CSV and folder readers;
  one warning line on stderr says how many labels changed);
* two labels that differ only by case are refused (`check_label_case`), naming them: which one was meant
  is for the person to say;
* a class with fewer than `MIN_TRAIN` training or `MIN_VALID` validation documents is refused
  (`check_class_counts`), and so is a data set too small for its split (`check_split_size`); the error
  names the class, its counts, the file and what to change.

The minimums: a class needs `MIN_VALID = 1` validation document, else the validation accuracy says nothing
about it (and a class only the validation split has cannot be predicted at all); and `MIN_TRAIN = 5` training
documents: fewer and the classifier can at best memorise them (scikit-learn's stratified 5-fold split asks
the same five per class). Both are floors against a mistake (a typo'd label, a too-small file), not
advice: a useful classifier wants hundreds of documents per class.
"""
from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from typing import TextIO

from .splits import valid_size

MIN_TRAIN = 5  # training documents every class needs
MIN_VALID = 1  # validation documents every class needs


def strip_labels(labels: list[str], where: str, out: TextIO | None = None) -> list[str]:
    """`labels` with surrounding whitespace removed; if any changed, one warning line on stderr (`out`) naming
    `where`, how many labels changed and how.

    >>> strip_labels(["pos", " pos", "neg ", "pos "], "my.csv", out=sys.stdout)
    warning: my.csv: 3 labels had spaces around them ('neg ' -> 'neg', ' pos' -> 'pos', 'pos ' -> 'pos'); stripped: each is one class with the label without them
    ['pos', 'pos', 'neg', 'pos']
    """
    stripped = [o.strip() for o in labels]
    changed = sorted({a: b for a, b in zip(labels, stripped, strict=True) if a != b}.items(), key=lambda ab: (ab[1], ab[0]))
    if changed:
        n = sum(a != b for a, b in zip(labels, stripped, strict=True))
        how = ", ".join(f"{a!r} -> {b!r}" for a, b in changed[:3]) + (" ..." if len(changed) > 3 else "")
        print(f"warning: {where}: {n} label{'s' if n > 1 else ''} had spaces around them ({how}); stripped: each "
              "is one class with the label without them", file=out or sys.stderr)
    return stripped


def check_label_case(labels: Sequence[str], where: str) -> None:
    """Refuse labels that differ only by case (`Pos` and `pos`), naming them and how many documents have each.

    >>> check_label_case(["pos", "Pos", "neg"], "my.csv")
    Traceback (most recent call last):
    ...
    ValueError: my.csv: labels that differ only by case: 'Pos' (1 document) and 'pos' (1 document); a classifier would learn them as different classes: write each class one way
    """
    counts = Counter(labels)
    groups: dict[str, list[str]] = {}
    for lab in sorted(counts):
        groups.setdefault(lab.casefold(), []).append(lab)
    clashes = [g for g in groups.values() if len(g) > 1]
    if clashes:
        said = "; ".join(" and ".join(f"{o!r} ({_n(counts[o])})" for o in g) for g in clashes)
        raise ValueError(f"{where}: labels that differ only by case: {said}; a classifier would learn them as "
                         "different classes: write each class one way")


def needed_rows(n_labels: int, valid_pct: float | None) -> int:
    """The fewest documents that can give every one of `n_labels` classes MIN_TRAIN training and MIN_VALID
    validation documents, with a random `valid_pct` split (None: the data's own split).

    >>> needed_rows(2, 0.2), needed_rows(2, 0.05), needed_rows(5, 0.5), needed_rows(3, None)
    (12, 40, 49, 18)
    """
    n = n_labels * (MIN_TRAIN + MIN_VALID)
    if valid_pct is not None:  # random_split's sizes: valid_size(n) validate, the rest train
        while valid_size(n, valid_pct) < n_labels * MIN_VALID or n - valid_size(n, valid_pct) < n_labels * MIN_TRAIN:
            n += 1
    return n


def check_split_size(labels: Sequence[str], is_valid: Sequence[bool] | None, valid_pct: float, where: str,
                     split_hint: str) -> None:
    """Refuse a data set too small for its split: name `where` (the file), the documents it has, the minimum
    and the flag that changes the split (`split_hint`)."""
    n_labels = len(set(labels))
    need = needed_rows(n_labels, None if is_valid is not None else valid_pct)
    if len(labels) < need:
        how = (f"--valid-pct {valid_pct:g}" if is_valid is None else "the validation column's split")
        raise ValueError(f"{where}: {len(labels)} document{'s' if len(labels) != 1 else ''}, too few for a "
                         f"classifier of {n_labels} labels with {how}: it needs at least {need} (each label "
                         f"{MIN_TRAIN} training and {MIN_VALID} validation document{'s' if MIN_VALID > 1 else ''}); "
                         f"add documents, or {split_hint}")


def check_class_counts(train: Sequence[str], valid: Sequence[str], where: str, split_hint: str,
                       examples: dict[str, list[str]] | None = None) -> None:
    """Refuse a class with fewer than MIN_TRAIN training or MIN_VALID validation documents, naming each such
    class with its counts (and a few of its documents from `examples`), the file and what to change."""
    tr, va = Counter(train), Counter(valid)
    short = [c for c in sorted(set(tr) | set(va)) if tr[c] < MIN_TRAIN or va[c] < MIN_VALID]
    if not short:
        return
    def one(c: str) -> str:
        docs = (examples or {}).get(c, [])
        seen = f", e.g. {', '.join(docs[:3])}" if docs else ""
        return f"{c!r}: {tr[c]} training and {va[c]} validation document{'s' if va[c] != 1 else ''}{seen}"
    raise ValueError(f"{where}: too few documents to learn or to validate class"
                     f"{'es' if len(short) > 1 else ''} {'; '.join(one(c) for c in short)}. Every class needs at "
                     f"least {MIN_TRAIN} training and {MIN_VALID} validation document"
                     f"{'s' if MIN_VALID > 1 else ''}: add documents of {'these classes' if len(short) > 1 else 'it'}, "
                     f"{split_hint}, or leave {'their' if len(short) > 1 else 'its'} documents out (a typo'd label?)")


def label_table(train: Sequence[str], valid: Sequence[str]) -> str:
    """The label set with the documents of each class in the training and the validation split.

    >>> print(label_table(["neg", "pos", "pos"], ["pos"]))
    label  train  valid
    neg        1      0
    pos        2      1
    total      3      1
    """
    tr, va = Counter(train), Counter(valid)
    rows = [("label", "train", "valid")] + [(c, str(tr[c]), str(va[c])) for c in sorted(set(tr) | set(va))]
    rows.append(("total", str(len(train)), str(len(valid))))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{a.ljust(w[0])}  {b.rjust(max(w[1], 5))}  {c.rjust(max(w[2], 5))}" for a, b, c in rows)


def _n(k: int) -> str:
    return f"{k} document{'s' if k != 1 else ''}"
