"""Run the user's commands in this process, cheaply: `main("finetune_lm", *argv)` is
`python scripts/finetune_lm.py argv` through its error guard (exit status and stderr), without a second
Python and torch start-up."""
import importlib.util
import sys
from pathlib import Path

from awdlstm.cli import main_guard

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
SAMPLE = ROOT / "data" / "samples" / "movie_reviews_sample.csv"
TINY = ["--preset", "tiny", "--threads", "1", "--quiet", "--seed", "0"]


def script(name: str):
    """scripts/<name>.py as a fresh module."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(name: str, *args: str, capsys=None) -> tuple[int, str]:
    """`python scripts/<name>.py args` in this process: (exit status, what it wrote to stderr if `capsys`)."""
    args = tuple(str(a) for a in args)
    argv, sys.argv = sys.argv, [f"{name}.py", *args]
    if capsys is not None:
        capsys.readouterr()
    try:
        main_guard(lambda: script(name).main(list(args)))
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err if capsys is not None else ""


def fails(script: str, *args, capsys, needles=()) -> str:
    """Run `script`; assert exit status 1 and one `script.py: error: ...` line containing every needle."""
    code, err = main(script, *args, capsys=capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"{script}.py: error: "), (code, err)
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def train_tiny_classifier(d: Path) -> Path:
    """A tiny language model and the classifier from its encoder, trained on the shipped sample into `d` by the
    scripts (`d/lm`, `d/clas`); returns the classifier's run folder."""
    cache = ["--cache-dir", str(d / "cache")]
    assert main("finetune_lm", *TINY, "--csv", SAMPLE, *cache, "--lm-docs", "16", "--epochs", "1", "--n-samples", "0",
                "--run-dir", d / "lm")[0] == 0
    assert main("train_classifier", *TINY, "--csv", SAMPLE, *cache, "--encoder", d / "lm", "--epochs", "1,0,0,0",
                "--run-dir", d / "clas")[0] == 0
    return d / "clas"
