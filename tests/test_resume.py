"""`--resume RUN_DIR` of finetune_lm.py and train_classifier.py, and a run killed for real with SIGKILL.

A run stopped after epoch k (in-process: `Learner.save` raises once it has written the k-th last.pt, as if the
process died right there) and then resumed ends with the same weights, bit for bit, as an uninterrupted one.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from run_scripts import ROOT, SAMPLE, SCRIPTS, main

from awdlstm.train import Learner
from awdlstm.train_checkpoint import load_checkpoint

TINY = ["--preset", "tiny", "--threads", "1", "--quiet", "--seed", "0", "--csv", str(SAMPLE)]
LM_ARGS = ["--lm-docs", "16", "--epochs", "4", "--n-samples", "1", "--n-words", "4"]  # 1 frozen + 4 epochs
CLAS_ARGS = ["--epochs", "1,1,0,2", "--lrs", "0.02,0.01,0.01,0.01", "--train-docs", "16", "--valid-docs", "8"]


class Killed(BaseException):
    """The process 'dies': nothing below main() catches it."""


pytestmark = pytest.mark.usefixtures("no_plots")


def kill_after_saves(monkeypatch, k: int) -> None:
    """The next run dies right after writing its k-th epoch checkpoint."""
    save, count = Learner.save, [0]

    def dying_save(self, path, fit=None):
        out = save(self, path, fit)
        count[0] += 1
        if count[0] == k:
            raise Killed
        return out

    monkeypatch.setattr(Learner, "save", dying_save)


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """Uninterrupted runs: the language model, then a classifier on its encoder."""
    d = tmp_path_factory.mktemp("resume")
    cache = ["--cache-dir", str(d / "cache")]
    assert main("finetune_lm", *TINY, *LM_ARGS, *cache, "--run-dir", str(d / "lm"))[0] == 0
    assert main("train_classifier", *TINY, *CLAS_ARGS, *cache, "--encoder", str(d / "lm"),
                "--run-dir", str(d / "clas"))[0] == 0
    return d


@pytest.mark.parametrize("k", [1, 3])  # 1: killed between the frozen and the unfrozen fit; 3: inside the second
def test_lm_resumed_equals_uninterrupted(full, tmp_path, monkeypatch, k):
    run = tmp_path / "lm"
    cache = ["--cache-dir", str(full / "cache")]
    with monkeypatch.context() as m:
        kill_after_saves(m, k)
        with pytest.raises(Killed):
            main("finetune_lm", *TINY, *LM_ARGS, *cache, "--run-dir", str(run))
    assert not (run / "lm.pt").exists() and load_checkpoint(run / "last.pt")["train_epochs"] == k
    assert main("finetune_lm", "--resume", str(run), "--threads", "1", "--quiet")[0] == 0
    assert_same_weights(full / "lm" / "lm.pt", run / "lm.pt")
    assert_same_weights(full / "lm" / "encoder.pt", run / "encoder.pt")
    assert not (run / "last.pt").exists()
    a, b = (json.loads((d / "config.json").read_text()) for d in (full / "lm", run))
    assert a["results"]["samples"] == b["results"]["samples"] and a["results"]["perplexity"] == b["results"]["perplexity"]
    assert len(b["resumed"]) == 1 and b["started"] == json.loads((run / "config.json").read_text())["started"]
    assert (run / "history.csv").read_text().count("\n") == 1 + 5  # header + every epoch, once


def test_classifier_resumed_equals_uninterrupted(full, tmp_path, monkeypatch):
    run = tmp_path / "clas"
    args = [*TINY, *CLAS_ARGS, "--cache-dir", str(full / "cache"), "--encoder", str(full / "lm"), "--run-dir", str(run)]
    with monkeypatch.context() as m:
        kill_after_saves(m, 3)  # the head and freeze_to(-2) stages done, the unfrozen one half-way
        with pytest.raises(Killed):
            main("train_classifier", *args)
    fit = load_checkpoint(run / "last.pt")["fit"]
    assert (fit["fit"], fit["n_epoch"], fit["epoch"]) == (3, 2, 1)
    assert fit["lr_max"][0] == pytest.approx(0.01 / 2.6**4) and fit["lr_max"][-1] == pytest.approx(0.01)
    assert main("train_classifier", "--resume", str(run), "--threads", "1", "--quiet")[0] == 0
    assert_same_weights(full / "clas" / "classifier.pt", run / "classifier.pt")
    a, b = (json.loads((d / "config.json").read_text())["results"] for d in (full / "clas", run))
    assert a["accuracy"] == b["accuracy"] and a["valid_loss"] == b["valid_loss"]


def test_resume_without_checkpoint_starts_again_and_complete_run_is_refused(full, tmp_path, monkeypatch, capsys):
    run = tmp_path / "lm"
    cache = ["--cache-dir", str(full / "cache")]
    with monkeypatch.context() as m:
        kill_after_saves(m, 1)
        with pytest.raises(Killed):
            main("finetune_lm", *TINY, *LM_ARGS, *cache, "--run-dir", str(run))
    (run / "last.pt").unlink()  # killed before the first epoch ended ...
    (run / ".last.pt.x1y2.tmp").write_bytes(b"half a checkpoint")  # ... while writing it
    assert main("finetune_lm", "--resume", str(run), "--threads", "1", "--quiet")[0] == 0
    assert "starting the run again" in capsys.readouterr().out
    assert not list(run.glob(".*.tmp"))
    assert_same_weights(full / "lm" / "lm.pt", run / "lm.pt")

    code, err = main("finetune_lm", "--resume", str(run), capsys=capsys)
    assert code == 1 and err.splitlines() == [
        f"finetune_lm.py: error: --resume {run}: the run is complete (lm.pt is saved); nothing to resume"]
    code, err = main("train_classifier", "--resume", str(run), capsys=capsys)
    assert code == 1 and err.splitlines() == [
        f"train_classifier.py: error: --resume {run}: {run / 'config.json'} is not the config of a train_classifier run"]
    code, err = main("finetune_lm", "--resume", str(tmp_path / "nope"), capsys=capsys)
    assert code == 1 and err.splitlines() == [f"finetune_lm.py: error: run folder {tmp_path / 'nope'} does not exist"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_sigkill_mid_training_then_resume(full, tmp_path):
    """finetune_lm.py killed with SIGKILL (no handler runs) once two epochs are written: last.pt loads and
    --resume completes the run with the weights of the uninterrupted one."""
    run = tmp_path / "lm"
    cmd = [sys.executable, str(SCRIPTS / "finetune_lm.py"), *TINY, *LM_ARGS, "--cache-dir", str(full / "cache"),
           "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    try:
        while time.time() < deadline and proc.poll() is None:
            hist = run / "history.csv"
            if hist.exists() and hist.read_text().count("\n") >= 3:  # header + 2 epochs: the 2nd last.pt is due
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "lm.pt").exists()
    ckpt = load_checkpoint(run / "last.pt")  # complete, whatever the moment of the kill
    assert ckpt["train_epochs"] >= 1 and len(ckpt["history"]) == ckpt["train_epochs"]
    assert main("finetune_lm", "--resume", str(run), "--threads", "1", "--quiet")[0] == 0
    assert_same_weights(full / "lm" / "lm.pt", run / "lm.pt")


KEEP_SAVING = """
import sys, torch
from awdlstm.checkpoint import save_torch
i = 0
while True:
    save_torch({"model": {"w": torch.full((2_000_000,), float(i))}, "i": i}, sys.argv[1])
    i += 1
"""


def test_sigkill_during_saves_never_leaves_a_broken_checkpoint(tmp_path):
    """A process saving 8 MB checkpoints in a loop, killed at an arbitrary moment (most likely mid-save)."""
    path = tmp_path / "last.pt"
    proc = subprocess.Popen([sys.executable, "-c", KEEP_SAVING, str(path)], env=_env(), stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not path.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert path.exists(), proc.stderr.read() if proc.poll() is not None else "no checkpoint within 60 s"
        time.sleep(0.3)  # a few more saves: the kill lands inside one of them or between two
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    ckpt = load_checkpoint(path)
    assert torch.equal(ckpt["model"]["w"], torch.full((2_000_000,), float(ckpt["i"])))  # one whole save
    assert len(list(tmp_path.glob(".last.pt.*.tmp"))) <= 1  # the save that was cut, if any (--resume removes it)


def test_ctrl_c_says_how_to_resume(full, tmp_path, monkeypatch, capsys):
    run = tmp_path / "lm"
    save, count = Learner.save, [0]

    def save_then_ctrl_c(self, path, fit=None):
        out = save(self, path, fit)
        count[0] += 1
        if count[0] == 2:
            raise KeyboardInterrupt
        return out

    with monkeypatch.context() as m:
        m.setattr(Learner, "save", save_then_ctrl_c)
        code, err = main("finetune_lm", *TINY, *LM_ARGS, "--cache-dir", str(full / "cache"), "--run-dir", str(run),
                         capsys=capsys)
    assert code == 130 and err.strip().splitlines() == [
        f"finetune_lm.py: interrupted. Weights saved to {run / 'interrupted.pt'}. Finish the run with --resume {run} "
        "(from its last completed epoch, or from the start if there is none)."]
    assert (run / "interrupted.pt").exists() and load_checkpoint(run / "last.pt")["train_epochs"] == 2
    assert main("finetune_lm", "--resume", str(run), "--threads", "1", "--quiet")[0] == 0
    assert_same_weights(full / "lm" / "lm.pt", run / "lm.pt")
