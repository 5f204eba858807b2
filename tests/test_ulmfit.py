"""The chapter in Python (awdlstm/ulmfit.py): docs/usage.md's Python block runs as written (tiny preset, sample
corpus), the README's commands name real scripts and flags, and `gradual_unfreeze` makes the book's calls in the
book's order."""
import re
import shlex
from pathlib import Path

from run_scripts import ROOT, SAMPLE, main

from awdlstm import CLAS_PRESETS, ClasRecipe, gradual_unfreeze


def test_the_usage_guide_runs_the_stages_in_python(tmp_path, monkeypatch):
    """docs/usage.md's Python block (the three stages, one call each) runs as written, at the tiny preset."""
    usage = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", usage, re.S) if "train_classifier(" in b)
    assert 6 <= len(block.strip().splitlines()) <= 14  # about ten lines
    code = block.replace('"cpu"', '"tiny"').replace("imdb_embedded()", f"imdb_embedded({str(SAMPLE)!r})")
    assert code != block
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWDLSTM_CACHE", str(tmp_path / "cache"))
    ns: dict = {}
    exec(compile(code, "docs/usage.md", "exec"), ns)
    lm, clas = ns["lm"], ns["clas"]
    assert (Path("runs/my-lm") / "encoder.pt").is_file() and (Path("runs/my-clas") / "classifier.pt").is_file()
    assert lm.perplexity > 1 and len(lm.samples) == 2
    assert 0 <= clas.accuracy <= 1 and clas.labels.itos == ["neg", "pos"]
    labels, probs = ns["labels"], ns["probs"]
    assert labels[0] in ("neg", "pos") and probs.shape == (1, 2) and abs(probs.sum().item() - 1) < 1e-5


class Recorder:
    """Stands in for a Learner: records the calls gradual_unfreeze makes."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


def test_gradual_unfreeze_is_the_books_four_stages():
    learn = Recorder()
    gradual_unfreeze(learn, CLAS_PRESETS["gpu"])
    m = 2.6**4
    assert learn.calls == [("freeze",), ("fit_one_cycle", 1, 2e-2),
                           ("freeze_to", -2), ("fit_one_cycle", 1, slice(1e-2 / m, 1e-2)),
                           ("freeze_to", -3), ("fit_one_cycle", 1, slice(5e-3 / m, 5e-3)),
                           ("unfreeze",), ("fit_one_cycle", 2, slice(1e-3 / m, 1e-3))]
    learn = Recorder()
    gradual_unfreeze(learn, ClasRecipe(epochs=(1, 0, 0, 3), lr_mult=2.0))
    assert learn.calls[-1] == ("fit_one_cycle", 3, slice(1e-3 / 2, 1e-3)) and learn.calls[3][1] == 0


def test_the_readmes_commands_name_real_scripts_and_flags(capsys):
    """Every command of the README (quick start, other ways in) runs a script that exists, with flags its
    --help lists; the quick start is scripts/ulmfit.py (tests/test_ulmfit_pipeline.py runs it end to end) and
    the hour is one command, no background jobs. Also: the README stays a front door of at most 200 lines."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    commands = [c for b in blocks for c in re.findall(r"\.venv/bin/python (scripts/\S+\.py[^&#\n]*)", b)]
    assert commands[0].strip() == "scripts/ulmfit.py"  # the quick start
    assert any("--preset cpu-hour" in c for c in commands) and not any(" & " in b or "wait" in b for b in blocks)
    for command in commands:
        script, *args = shlex.split(command)
        assert (ROOT / script).is_file(), script
        code, _ = main(Path(script).stem, "--help", capsys=None)
        listed = capsys.readouterr().out
        assert code == 0 and listed, script
        for flag in (a for a in args if a.startswith("--")):
            assert re.search(rf"(^|\s|\[){re.escape(flag)}\b", listed), (script, flag)
