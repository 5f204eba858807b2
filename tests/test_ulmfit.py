"""The chapter in Python (awdlstm/ulmfit.py): the README's Python block and its cpu-hour bash block run as written
(tiny preset, sample corpus), and `gradual_unfreeze` makes the book's calls in the book's order."""
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from run_scripts import ROOT, SAMPLE, TINY

from awdlstm import CLAS_PRESETS, ClasRecipe, gradual_unfreeze


def test_the_readme_runs_the_chapter_in_python(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## The chapter in Python.*?```python\n(.*?)```", readme, re.S).group(1)
    assert 6 <= len(block.strip().splitlines()) <= 14  # about ten lines
    code = block.replace('"cpu"', '"tiny"').replace("imdb_embedded()", f"imdb_embedded({str(SAMPLE)!r})")
    assert code != block
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWDLSTM_CACHE", str(tmp_path / "cache"))
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
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


def test_the_readmes_cpu_hour_commands_run(tmp_path):
    """The README's cpu-hour block runs as written, in bash (the forward and the backward model side by side,
    then the ensemble), at the tiny preset on the sample corpus."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "--preset cpu-hour" in b)
    called = re.findall(r"\.venv/bin/python (scripts/\S+)", block)
    assert called == ["scripts/finetune_lm.py", "scripts/train_classifier.py",
                      "scripts/finetune_lm.py", "scripts/train_classifier.py", "scripts/ensemble.py"]
    small = shlex.join([*TINY, "--csv", str(SAMPLE), "--cache-dir", str(tmp_path / "cache")])
    python, scripts = shlex.quote(sys.executable), shlex.quote(str(ROOT / "scripts"))
    code = block.replace("--preset cpu-hour", small).replace(".venv/bin/python scripts/", f"{python} {scripts}/")
    proc = subprocess.Popen(["bash", "-c", code], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # its own process group: a timeout stops the jobs too
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    out = stdout.splitlines()
    assert out[-1].endswith("the ensemble (mean probabilities of 2 models, 24 validation documents)"), out[-3:]
    assert [line.split()[1] for line in out[-3:-1]] == ["runs/clas-fwd", "runs/clas-bwd"]
    assert "run folder: runs/lm-bwd" in (tmp_path / "runs" / "bwd.out").read_text(encoding="utf-8")
    for run in ("lm-fwd", "lm-bwd"):
        assert (tmp_path / "runs" / run / "encoder.pt").is_file()
