"""A text source as plain values: which texts a training stage reads, recorded in config.json so that
`--resume` reads the same ones again.

    TextSource()                                # the embedded corpus: 25,000 IMDb reviews, canonical split
    TextSource("csv", "my.csv", valid_col="is_valid")
    TextSource("folder", "aclImdb")             # an IMDb-style folder (train/ and test/) or class folders
    TextSource("wikitext", None)                # WikiText-103 (downloaded), its own train/test split
    TextSource("text", "corpus.txt")            # a plain text file, one document per line (language models)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .download import download_wikitext103
from .sources import (
    Texts,
    imdb_embedded,
    read_csv,
    read_folder,
    read_imdb,
    read_imdb_lm,
    read_lines,
    read_wikitext,
)

KINDS = ("imdb", "csv", "folder", "wikitext", "text")


@dataclass
class TextSource:
    """`kind` is one of KINDS; `path` the CSV file, folder or text file (for wikitext: its folder, None =
    download)."""

    kind: str = "imdb"
    path: str | None = None
    text_col: str = "text"
    label_col: str = "label"
    valid_col: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown text source {self.kind!r}; choose from {KINDS}")
        if self.kind in ("csv", "folder", "text") and not self.path:
            raise ValueError(f"a {self.kind} source needs a path")

    def describe(self) -> str:
        """How the user named it: `--csv my.csv`, `--folder x`, `the embedded corpus`, `WikiText-103`."""
        return {"imdb": "the embedded corpus", "csv": f"--csv {self.path}", "folder": f"--folder {self.path}",
                "text": f"--text {self.path}",
                "wikitext": f"--wikitext {self.path}" if self.path else "WikiText-103"}[self.kind]

    def read(self, labelled: bool, progress: bool = True) -> Texts:
        """The texts (labels and train/valid flags where the source has them). No texts at all, or
        (`labelled`) fewer than two labels, is an error naming the source."""
        if self.kind == "csv":
            texts = read_csv(self.path, self.text_col, self.label_col if labelled else None, self.valid_col)
        elif self.kind == "folder":
            if all((Path(self.path) / d).is_dir() for d in ("train", "test")):
                texts = read_imdb(self.path) if labelled else read_imdb_lm(self.path)
            else:
                texts = read_folder(self.path, labelled=labelled)
        elif self.kind == "text":
            if labelled:
                raise ValueError(f"{self.describe()}: a plain text file has no labels; a classifier reads --csv or "
                                 "--folder")
            texts = read_lines(self.path)
        elif self.kind == "wikitext":
            texts = _wikitext(self.path or download_wikitext103(progress=progress), self.describe())
        else:
            texts = imdb_embedded()
        if len(texts) == 0:
            raise ValueError(f"{self.describe()}: no texts (an empty corpus)")
        if labelled and len(set(texts.labels)) < 2:
            raise ValueError(f"{self.describe()}: a classifier needs at least two labels, found "
                             f"{sorted(set(texts.labels))}")
        return texts


def _wikitext(path, where: str) -> Texts:
    train, valid = read_wikitext(path)
    if not train or not valid:
        raise ValueError(f"{where}: {len(train)} training and {len(valid)} validation articles; both are needed")
    names = [f"train.csv:{i}" for i in range(len(train))] + [f"test.csv:{i}" for i in range(len(valid))]
    return Texts(train + valid, None, names, [False] * len(train) + [True] * len(valid))
