"""What the ULMFiT scripts share: recipes (presets), flags, run folders, devices, corpora, tokens and loaders.

The scripts import this module as a sibling (`python scripts/finetune_lm.py` puts `scripts/` on sys.path).
It lives here, not in `awdlstm/`, because it glues the three packages together (awdlstm, data, tokenizers),
and the packages themselves only import downwards.

A recipe is a dataclass: every field is a flag (`emb_sz` -> `--emb-sz`), every preset an instance, and the
presets are printed as a table at the end of `--help`. A run folder (`runs/lm-20261125-221500/`) holds
everything one run made: config.json, vocab.json, weights + JSON configs, history.csv/json, curves.png,
log.txt.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from awdlstm.train import NonFiniteLoss
from data import Texts, imdb_embedded, read_csv, read_folder, read_imdb, read_imdb_lm
from data.download import ChecksumError, DownloadError, UnsafeArchiveError, get_cache_dir
from tokenizers.atomic import read_json, write_json
from tokenizers.corpus import TokenizedCorpus, tokenize_corpus

RUNS = Path("runs")


def _f(default, help: str):
    """A recipe field with its --help text."""
    return field(default=default, metadata={"help": help})


# ---------------------------------------------------------------- recipes and presets

@dataclass
class LMRecipe:
    """Stage 2 of ULMFiT (chapter 10, "Fine-Tuning the Language Model"); the defaults are the book's."""

    emb_sz: int = _f(400, "embedding size (ignored with --pretrained: the weights decide)")
    n_hid: int = _f(1152, "hidden size of the LSTM layers but the last")
    n_layers: int = _f(3, "LSTM layers")
    drop_mult: float = _f(0.3, "multiplier of all the dropouts")
    min_freq: int = _f(3, "vocab: keep tokens seen at least this often")
    max_vocab: int = _f(60000, "vocab: at most this many tokens")
    lm_docs: int = _f(0, "documents the language model reads (random subset; 0 = all)")
    valid_pct: float = _f(0.1, "share of those documents held out for validation")
    bs: int = _f(128, "batch size")
    seq_len: int = _f(80, "sequence length (bptt)")
    frozen_epochs: int = _f(1, "epochs with all but the last group frozen")
    frozen_lr: float = _f(2e-2, "learning rate of the frozen epochs")
    epochs: int = _f(10, "epochs after unfreezing")
    lr: float = _f(2e-3, "learning rate after unfreezing")
    wd: float = _f(0.01, "weight decay")
    precision: str = _f("auto", "auto | fp32 | bf16 | fp16 (auto: mixed precision where the device has it)")


@dataclass
class ClasRecipe:
    """Stage 3 of ULMFiT (chapter 10, "Fine-Tuning the Classifier"): gradual unfreezing, discriminative lrs.

    Stage i trains `epochs[i]` epochs at `lrs[i]`, with all but the last i+1 groups frozen (the last stage
    unfreezes everything); from the second stage on the lr is `slice(lr / lr_mult, lr)`.
    """

    drop_mult: float = _f(0.5, "multiplier of all the dropouts")
    bs: int = _f(128, "batch size")
    seq_len: int = _f(72, "bptt of the SentenceEncoder and padding chunk")
    max_len: int = _f(1440, "the head pools the last max_len tokens (backpropagation reaches only these)")
    max_tokens: int = _f(0, "cut every document to its first max_tokens tokens (0 = whole documents)")
    train_docs: int = _f(0, "training documents (random subset; 0 = all)")
    valid_docs: int = _f(0, "validation documents (random subset; 0 = all)")
    valid_pct: float = _f(0.2, "validation share when the data has no split of its own")
    epochs: tuple[int, ...] = _f((1, 1, 1, 2), "epochs of each unfreezing stage")
    lrs: tuple[float, ...] = _f((2e-2, 1e-2, 5e-3, 1e-3), "top learning rate of each stage")
    lr_mult: float = _f(2.6**4, "discriminative lrs: first group gets lr / lr_mult")
    wd: float = _f(0.01, "weight decay")
    precision: str = _f("auto", "auto | fp32 | bf16 | fp16")

    def __post_init__(self):
        if len(self.epochs) != len(self.lrs):
            raise ValueError(f"--epochs has {len(self.epochs)} stages but --lrs has {len(self.lrs)}")


LM_PRESETS = {
    "gpu": LMRecipe(),  # the book: AWD-LSTM 400/1152/3, bs 128, seq_len 80, 1 + 10 epochs
    # measured on a 2-core AMD EPYC (load 1-2): finetune_lm 102 s + train_classifier 236 s, 85.9% valid accuracy
    "cpu": LMRecipe(emb_sz=64, n_hid=192, n_layers=2, max_vocab=8000, lm_docs=1500, bs=64, seq_len=72,
                    epochs=1, lr=1e-2),
    "tiny": LMRecipe(emb_sz=16, n_hid=32, n_layers=2, max_vocab=2000, min_freq=2, lm_docs=40, bs=16, seq_len=16,
                     epochs=1, precision="fp32"),
}
CLAS_PRESETS = {
    "gpu": ClasRecipe(),
    # from random weights the encoder must train at a high lr: the last stage unfreezes at 1e-2, lr_mult 2.6**2
    "cpu": ClasRecipe(bs=64, max_tokens=200, max_len=200, epochs=(1, 1, 2), lrs=(2e-2, 1e-2, 1e-2), lr_mult=2.6**2),
    "tiny": ClasRecipe(bs=8, seq_len=16, max_len=64, max_tokens=64, train_docs=48, valid_docs=24, epochs=(1, 1),
                       lrs=(2e-2, 1e-2), precision="fp32"),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse with a one-line error (`prog: error: ... (see --help)`) and exit status 2; the description
    (the script's docstring, examples included) is shown as written."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parse_field(f: dataclasses.Field):
    """The argparse `type` of a recipe field: tuples are comma-separated lists."""
    default = f.default
    if isinstance(default, tuple):
        kind = type(default[0])
        return lambda s: tuple(kind(v) for v in s.split(",") if v.strip())
    return type(default)


def add_recipe_flags(parser: argparse.ArgumentParser, recipe_cls: type, presets: dict) -> None:
    """One flag per recipe field (default: the preset's value), the presets as a table in the epilog."""
    group = parser.add_argument_group("recipe (each flag overrides the preset's value)")
    for f in fields(recipe_cls):
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=_parse_field(f), default=None,
                           metavar=f.name.upper(), help=f.metadata["help"])
    names = list(presets)
    rows = [["field", *names]] + [[f.name, *(_fmt(getattr(presets[n], f.name)) for n in names)]
                                  for f in fields(recipe_cls)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
    parser.epilog = (f"presets ({recipe_cls.__name__}; --preset defaults to gpu on CUDA, else cpu):\n{table}")


def _fmt(v) -> str:
    if isinstance(v, tuple):
        return ",".join(_fmt(o) for o in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def recipe_from_args(args: argparse.Namespace, presets: dict, device: torch.device):
    """The preset named by --preset (default by device) with every flag given on the command line applied."""
    name = args.preset or ("gpu" if device.type == "cuda" else "cpu")
    base = presets[name]
    changes = {f.name: getattr(args, f.name) for f in fields(base) if getattr(args, f.name) is not None}
    return name, dataclasses.replace(base, **changes)


def add_common_flags(parser: argparse.ArgumentParser, presets: dict) -> None:
    """--preset, --device, --seed, --run-dir, --quiet."""
    parser.add_argument("--preset", choices=list(presets), default=None, help="recipe to start from")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to train")
    parser.add_argument("--seed", type=int, default=42, help="random seed (data order, weights, dropout)")
    parser.add_argument("--run-dir", default=None, help="run folder (default: runs/<stage>-<date>-<time>)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (0: torch's default; 1 is faster on a busy machine)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_source_flags(parser: argparse.ArgumentParser, default: str = "the embedded corpus, 25,000 IMDb reviews") -> None:
    """Where the texts come from: the default source, a CSV file or a folder of .txt files."""
    g = parser.add_argument_group(f"data (default: {default})")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--csv", default=None, help="CSV file with a header row")
    src.add_argument("--folder", default=None, help="folder of .txt files, labelled by their parent folder "
                     "(an IMDb-style folder with train/ and test/ is split by them)")
    g.add_argument("--text-col", default="text", help="CSV column of the texts")
    g.add_argument("--label-col", default="label", help="CSV column of the labels")
    g.add_argument("--valid-col", default=None, help="CSV column marking validation rows (true/1/yes)")
    g.add_argument("--cache-dir", default=None, help="tokenized-corpus cache (default: ~/.cache/awdlstm/tokens)")


def resolve_device(name: str, threads: int = 0) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is an error. Sets torch's CPU threads."""
    if threads > 0:
        torch.set_num_threads(threads)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available (use --device cpu or auto)")
    return torch.device(name)


# ---------------------------------------------------------------- run folders and logs

def new_run_dir(run_dir: str | None, stage: str) -> Path:
    """The run folder to write: `run_dir`, or a new `runs/<stage>-<date>-<time>` one."""
    if run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path, i = RUNS / f"{stage}-{stamp}", 1
        while path.exists():
            path, i = RUNS / f"{stage}-{stamp}-{i}", i + 1
    else:
        path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def newest_run(stage: str, needs: str) -> Path:
    """The most recent `runs/<stage>-*` folder holding the file `needs`."""
    runs = sorted((p for p in RUNS.glob(f"{stage}-*") if (p / needs).is_file()), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError(f"no finished {stage} run with {needs} under {RUNS}/; give its folder explicitly")
    return runs[-1]


def run_file(run_dir: str | Path, name: str) -> Path:
    """`run_dir/name`, or a clear error when the folder or the file is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    if not (run_dir / name).is_file():
        raise FileNotFoundError(f"{run_dir} has no {name} (is it the right kind of run folder?)")
    return run_dir / name


def read_config(run_dir: str | Path) -> dict:
    """A run folder's config.json; a missing, truncated or hand-broken one is an error naming it."""
    path = run_file(run_dir, "config.json")
    config = read_json(path)
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a run's config (expected a JSON object)")
    return config


def save_config(run_dir: Path, config: dict) -> None:
    """Write config.json (everything that defines the run, plus results once known), atomically."""
    write_json(run_dir / "config.json", json.loads(json.dumps(config, default=str)))


class _Tee:
    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, s: str) -> int:
        self.log.write(s)
        self.log.flush()
        return self.stream.write(s)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextmanager
def logged(run_dir: Path):
    """Copy everything printed to stdout (the tables, the results) into `run_dir/log.txt`."""
    with open(run_dir / "log.txt", "a", encoding="utf-8") as log:
        old, sys.stdout = sys.stdout, _Tee(sys.stdout, log)
        try:
            yield
        finally:
            sys.stdout = old


# What a user can cause: bad files and flags, a failed download, a diverging run. Anything else is a bug
# and keeps its traceback.
USER_ERRORS = (OSError, ValueError, TypeError, KeyError, NonFiniteLoss, DownloadError, ChecksumError,
               UnsafeArchiveError)


def main_guard(main) -> None:
    """Run `main()`; a bad input (missing file, wrong value, failed download, diverging loss) ends with a
    one-line error and exit status 1, Ctrl-C with one line and status 130."""
    try:
        main()
    except KeyboardInterrupt as e:  # the Learner has saved interrupted.pt and says how to resume
        print(f"{Path(sys.argv[0]).name}: interrupted. {e}".rstrip(), file=sys.stderr)
        sys.exit(130)
    except USER_ERRORS as e:
        msg = "; ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
        print(f"{Path(sys.argv[0]).name}: error: {msg}", file=sys.stderr)
        sys.exit(1)


# ---------------------------------------------------------------- texts, tokens, subsets

def read_source(args: argparse.Namespace, labelled: bool) -> Texts:
    """The texts (and labels, and train/valid flags where the source has them) the flags point to.

    No texts at all, or (`labelled`) fewer than two labels, is an error naming the source.
    """
    if args.csv:
        texts = read_csv(args.csv, args.text_col, args.label_col if labelled else None, args.valid_col)
        where = f"--csv {args.csv}"
    elif args.folder:
        imdb_like = all((Path(args.folder) / d).is_dir() for d in ("train", "test"))
        if imdb_like:
            texts = read_imdb(args.folder) if labelled else read_imdb_lm(args.folder)
        else:
            texts = read_folder(args.folder, labelled=labelled)
        where = f"--folder {args.folder}"
    else:
        texts, where = imdb_embedded(), "the embedded corpus"
    if len(texts) == 0:
        raise ValueError(f"{where}: no texts (an empty corpus)")
    if labelled and len(set(texts.labels)) < 2:
        raise ValueError(f"{where}: a classifier needs at least two labels, found {sorted(set(texts.labels))}")
    return texts


def tokenize_texts(texts: list[str], cache_dir: str | None, quiet: bool = False) -> TokenizedCorpus:
    """All texts through the word pipeline, on all cores, cached (a second run on the same texts is instant)."""
    cache = Path(cache_dir) if cache_dir else get_cache_dir() / "tokens"
    cache.mkdir(parents=True, exist_ok=True)
    return tokenize_corpus(texts, cache_dir=cache, progress=None if not quiet else False)


def sample(idxs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most `n` of `idxs` at random, in their original order (`n <= 0`: all of them)."""
    if n <= 0 or n >= len(idxs):
        return np.asarray(idxs)
    return np.sort(rng.choice(np.asarray(idxs), n, replace=False))


def random_split(n: int, valid_pct: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """fastai's RandomSplitter: a random `valid_pct` of range(n) for validation, the rest for training."""
    if not 0 < valid_pct < 1:
        raise ValueError(f"valid_pct must be in (0, 1), got {valid_pct}")
    perm = rng.permutation(n)
    n_valid = max(1, int(valid_pct * n))
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])
