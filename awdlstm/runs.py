"""Run folders: everything one training run makes, in one folder, owned by that run alone.

`runs/lm-20261125-221500/` holds config.json (what the run was given: recipe, data, seed; its results once
known), vocab.json, the weights with their JSON configs, history.csv/json, curves.png and log.txt. While a run
trains, the folder is locked (`.lock` holds its process id): a second run into it is refused. A folder that
holds another stage's run is refused too, and so is a finished or started run of the same stage unless it is
resumed. `--resume` (a stage called with `resume=True`) checks that the data are the ones the run started
from (`data_digest` in config.json) before it loads `last.pt`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from awdlstm.tokenizers.atomic import read_json, write_json

RUNS = Path("runs")
LOCK = ".lock"


def resolve_device(name: str = "auto", threads: int = 0) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is an error. Sets torch's CPU threads."""
    if threads > 0:
        torch.set_num_threads(threads)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def new_run_dir(stage: str, runs: Path = RUNS) -> Path:
    """A new `runs/<stage>-<date>-<time>` folder name (not created)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, i = runs / f"{stage}-{stamp}", 1
    while path.exists():
        path, i = runs / f"{stage}-{stamp}-{i}", i + 1
    return path


def newest_run(stage: str, needs: str, runs: Path = RUNS) -> Path:
    """The most recent `runs/<stage>-*` folder holding the file `needs`."""
    found = sorted((p for p in runs.glob(f"{stage}-*") if (p / needs).is_file()), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"no finished {stage} run with {needs} under {runs}/; give its folder explicitly")
    return found[-1]


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


def stage_config(run_dir: str | Path, stage: str) -> dict:
    """The config.json of a `stage` run to resume; another stage's is an error naming it."""
    path = Path(run_dir)
    saved = read_config(path)
    if saved.get("stage") != stage:
        raise ValueError(f"--resume {path}: {path / 'config.json'} is not the config of a {stage} run")
    return saved


def save_config(run_dir: Path, config: dict) -> None:
    """Write config.json (everything that defines the run, plus results once known), atomically, with a
    checksum of its contents (a later stage reads it: an edited config.json is refused, naming it)."""
    write_json(run_dir / "config.json", json.loads(json.dumps(config, default=str)), checksum=True)


def data_digest(texts: list[str], labels: list | None = None) -> str:
    """sha256 of the texts (and labels) a run reads: `--resume` refuses data that changed since."""
    h = hashlib.sha256()
    for i, t in enumerate(texts):
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00" + (str(labels[i]).encode("utf-8", "surrogatepass") if labels is not None else b"") + b"\x01")
    return h.hexdigest()


# ---------------------------------------------------------------- owning a folder

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(run_dir: Path) -> Path:
    """Take `run_dir/.lock` for this process; a live other owner is an error, a dead one's lock is taken over."""
    lock = run_dir / LOCK
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise ValueError(f"run folder {run_dir} is in use by another run (process {pid}); wait for it to "
                                 "finish or give another folder") from None
            lock.unlink(missing_ok=True)  # left by a run that died: take it over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return lock
    raise ValueError(f"run folder {run_dir}: could not take its lock {lock}")


@contextmanager
def open_run(run_dir: str | Path | None, stage: str, folder: str, final: str, config: dict, resume: bool = False,
             main: bool = True) -> Iterator[tuple[Path, Path | None, dict]]:
    """Own a run folder for the duration of a training run: (folder, checkpoint to resume from or None, config).

    `run_dir` None makes a new `runs/<folder>-<date>-<time>`. A folder that holds another stage's run, or (not
    resuming) any run of this stage, is refused, and so is one locked by a live run. `resume=True` needs the
    folder's config.json to be this stage's with the same `data_digest`; it continues from `last.pt` (none: from
    the start); a finished run (`final` saved) is refused. A run that fails before its first epoch is saved
    removes the folder it created. `main` False (the other ranks under torchrun): only the folder's name.
    """
    created = run_dir is None or not Path(run_dir).exists()
    path = new_run_dir(folder) if run_dir is None else Path(run_dir)
    if not main:
        yield path, (path / "last.pt" if resume and (path / "last.pt").is_file() else None), config
        return
    saved = _check_folder(path, stage, final, config, resume)
    path.mkdir(parents=True, exist_ok=True)
    lock = acquire_lock(path)
    try:
        resume_from = None
        if saved is not None:
            for tmp in path.glob(".*.tmp"):  # the temporary file of a save that was killed half-way
                tmp.unlink(missing_ok=True)
            resume_from = path / "last.pt" if (path / "last.pt").is_file() else None
            if resume_from is None:
                print(f"{path} has no last.pt (no epoch was completed): starting the run again")
            config = {**config, "started": saved.get("started", config.get("started")),
                      "resumed": [*saved.get("resumed", []), time.strftime("%Y-%m-%d %H:%M:%S")]}
        save_config(path, config)
        yield path, resume_from, config
    except BaseException:
        if created and not any(path.glob("*.pt")):  # nothing worth keeping was made: leave no empty run behind
            lock.unlink(missing_ok=True)
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        lock.unlink(missing_ok=True)


def _check_folder(path: Path, stage: str, final: str, config: dict, resume: bool) -> dict | None:
    """The refusals of `open_run`; returns the saved config of the run to resume (None: a new run)."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"run folder {path} is a file")
    has_config = (path / "config.json").is_file()
    if not resume:
        if has_config:
            other = _stage_of(path)
            what = f"a {other} run" if other != stage else "a run already"
            raise ValueError(f"run folder {path} holds {what}; give a new folder (or --resume it)")
        return None
    if not has_config:
        raise FileNotFoundError(f"--resume {path}: no run to resume there (no config.json)")
    saved = stage_config(path, stage)
    if (path / final).is_file() and not (path / "last.pt").is_file():
        raise ValueError(f"--resume {path}: the run is complete ({final} is saved); nothing to resume")
    if saved.get("data_digest") and saved["data_digest"] != config.get("data_digest"):
        raise ValueError(f"--resume {path}: the data differ from the ones the run started from (their digest in "
                         "config.json does not match); restore them, or start a new run")
    return saved


def _stage_of(path: Path) -> str:
    try:
        return str(read_config(path).get("stage", "unknown"))
    except ValueError:
        return "unknown"


# ---------------------------------------------------------------- the log

class Tee:
    """A stream that writes to `stream` and, flushed line by line, to `log` (a run's log.txt)."""

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
        old, sys.stdout = sys.stdout, Tee(sys.stdout, log)
        try:
            yield
        finally:
            sys.stdout = old
