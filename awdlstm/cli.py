"""What the command-line scripts share: flags made from the recipes, and the one-line error guard.

A recipe field becomes a flag (`emb_sz` -> `--emb-sz`, default: the preset's value), checked when it is
parsed (a value out of range is a one-line error naming the flag), and the presets are printed side by side
at the end of `--help`. `run_lm` is the one call of both language-model scripts (stages 1 and 2).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import fields
from pathlib import Path

from awdlstm import distributed as D
from awdlstm import ulmfit
from awdlstm.data.download import ChecksumError, DownloadError, UnsafeArchiveError
from awdlstm.data.sources import read_text
from awdlstm.data.text_source import TextSource
from awdlstm.pretrained import PRETRAINED_HELP
from awdlstm.recipes import LMRecipe, check_value
from awdlstm.runs import resolve_device
from awdlstm.shared_corpus import MappedCorpus, lm_texts
from awdlstm.train import NonFiniteLoss


class OneLineParser(argparse.ArgumentParser):
    """argparse with a one-line error (`prog: error: ... (see --help)`) and exit status 2; the description
    (the script's docstring, examples included) is shown as written."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def checked(kind: type, name: str, check: str = "", choices: tuple = ()):
    """An argparse `type` that converts with `kind` and range-checks the value (see recipes.check_value)."""
    def parse(s: str):
        try:
            value = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a valid {kind.__name__}: {s!r}") from None
        try:
            check_value(name, value, check, choices)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).split(" ", 1)[1]) from None  # argparse names the flag
        return value
    return parse


def _field_type(f: dataclasses.Field):
    """The argparse `type` of a recipe field: tuples are comma-separated lists; values are range-checked."""
    default, check, choices = f.default, f.metadata.get("check", ""), f.metadata.get("choices", ())
    if isinstance(default, tuple):
        one = checked(type(default[0]), f.name, check)
        return lambda s: tuple(one(v.strip()) for v in s.split(",") if v.strip())
    return checked(type(default), f.name, check, choices)


def add_recipe_flags(parser: argparse.ArgumentParser, recipe_cls: type, presets: dict) -> None:
    """One flag per recipe field (default: the preset's value), the presets as a table in the epilog."""
    group = parser.add_argument_group("recipe (each flag overrides the preset's value)")
    for f in fields(recipe_cls):
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=_field_type(f), default=None,
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


def recipe_from_args(args: argparse.Namespace, presets: dict, device_type: str):
    """(name, recipe): the preset named by --preset (default by device) with every flag given applied."""
    name = args.preset or ("gpu" if device_type == "cuda" else "cpu")
    base = presets[name]
    changes = {f.name: getattr(args, f.name) for f in fields(base) if getattr(args, f.name) is not None}
    return name, dataclasses.replace(base, **changes)


def add_common_flags(parser: argparse.ArgumentParser, presets: dict) -> None:
    """--preset, --device, --seed, --run-dir, --threads, --quiet, --resume."""
    parser.add_argument("--preset", choices=list(presets), default=None, help="recipe to start from")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to train")
    parser.add_argument("--seed", type=checked(int, "seed", "nonneg"), default=42,
                        help="random seed (data order, weights, dropout)")
    parser.add_argument("--run-dir", default=None, help="run folder (default: runs/<stage>-<date>-<time>)")
    parser.add_argument("--threads", type=checked(int, "threads", "nonneg"), default=0,
                        help="CPU threads for torch (0: torch's default; 1 is faster on a busy machine)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="finish the interrupted run in RUN_DIR from its last.pt, with the settings it was "
                             "started with (only --threads, --quiet and --device may differ)")


def add_source_flags(parser: argparse.ArgumentParser, default: str = "the embedded corpus, 25,000 IMDb reviews",
                     text: bool = False) -> None:
    """Where the texts come from: the default source, a CSV file, a folder of .txt files (`text`: or a plain
    text file, one document per line, for a language model)."""
    g = parser.add_argument_group(f"data (default: {default})")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--csv", default=None, help="CSV file with a header row")
    src.add_argument("--folder", default=None, help="folder of .txt files, labelled by their parent folder "
                     "(an IMDb-style folder with train/ and test/ is split by them)")
    if text:
        src.add_argument("--text", default=None, metavar="FILE",
                         help="plain UTF-8 text file, one document per line (blank lines skipped), any size: "
                              "with --stream it is read a block at a time")
    g.add_argument("--text-col", default="text", help="CSV column of the texts")
    g.add_argument("--label-col", default="label", help="CSV column of the labels")
    g.add_argument("--valid-col", default=None, help="CSV column marking validation rows (true/1/yes)")
    g.add_argument("--cache-dir", default=None, help="tokenized-corpus cache (default: ~/.cache/awdlstm/tokens)")


def source_from_args(args: argparse.Namespace, default: str = "imdb") -> TextSource:
    """The `TextSource` the data flags name (`default` when neither --csv nor --folder is given)."""
    if args.csv:
        return TextSource("csv", args.csv, args.text_col, args.label_col, args.valid_col)
    if args.folder:
        return TextSource("folder", args.folder)
    if getattr(args, "text", None):
        return TextSource("text", args.text)
    return TextSource(default, getattr(args, "wikitext", None) if default == "wikitext" else None)


def lm_parser(prog: str, doc: str, presets: dict, prompt: str, source: str | None = None) -> OneLineParser:
    """The flags of a language-model script (this one, pretrain_lm.py): model start, generation, data, recipe."""
    ap = OneLineParser(description=doc, prog=prog)
    add_common_flags(ap, presets)
    ap.add_argument("--pretrained", default="none", help=PRETRAINED_HELP)
    ap.add_argument("--backwards", action="store_true", help="train a backward language model (texts reversed)")
    ap.add_argument("--prompt", default=prompt, help="prompt of the generated samples")
    ap.add_argument("--n-words", type=checked(int, "n_words", "nonneg"), default=40,
                    help="words to generate per sample")
    ap.add_argument("--n-samples", type=checked(int, "n_samples", "nonneg"), default=2,
                    help="samples to generate (0: none)")
    ap.add_argument("--temperature", type=checked(float, "temperature", "nonneg"), default=0.75,
                    help="sampling temperature")
    add_source_flags(ap, **({"default": source} if source else {}), text=True)
    ap.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                    help="build the corpus by streaming into --cache-dir, memory-mapped (a corpus bigger than "
                         "memory; shared by torchrun's ranks); default: for files over 256 MiB")
    add_recipe_flags(ap, LMRecipe, presets)
    return ap


def run_lm(args: argparse.Namespace, stage: str, presets: dict, default_source: str = "imdb") -> None:
    """One language-model stage as the flags say (`--resume`: as the run's config.json says)."""
    device = D.setup(resolve_device(args.device, args.threads))  # this rank's device under torchrun
    if args.resume:
        ulmfit.resume_run(args.resume, stage, device, progress=not args.quiet)
    else:
        preset, recipe = recipe_from_args(args, presets, device.type)
        source = source_from_args(args, default_source)
        texts = lm_texts(source, args.stream, args.cache_dir, progress=not args.quiet)  # streamed: a MappedCorpus
        ulmfit.finetune_lm(texts, recipe, args.run_dir, device,
                           pretrained=args.pretrained, backwards=args.backwards, own_split=source.kind == "wikitext",
                           seed=args.seed, cache_dir=args.cache_dir, progress=not args.quiet, prompt=args.prompt,
                           n_samples=args.n_samples, n_words=args.n_words, temperature=args.temperature,
                           stage=stage, settings={"preset": preset, "source": vars(source),
                                                  **({"stream": True} if isinstance(texts, MappedCorpus) else {})})
    D.finish()


def read_inputs(texts: list[str], files: list[str] | None) -> list[str]:
    """The texts to classify or interpret: the arguments, the files (each one text), or stdin (one per line)."""
    texts = list(texts)
    for f in files or []:
        if not Path(f).is_file():
            raise FileNotFoundError(f"{f} does not exist")
        texts.append(read_text(f))
    if not texts and not files:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("no texts (give them as arguments, with --files, or on stdin)")
    return texts


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
