"""What every part of scripts/dev/gpu_check.py shares: the sizes, a part's pass/fail checks, the JSON and the
log, subprocesses with a timeout, the machine's description and the max-difference measures.

Imported by gpu_check.py (and its parts), which first puts the checkout on sys.path: the code it checks
is this checkout's (awdlstm.tokenizers and awdlstm.data are its tokenizers/ and data/).
"""
from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from awdlstm import runs
from awdlstm.tokenizers.atomic import atomic_write

HERE = Path(__file__).resolve().parent  # scripts/dev
ROOT = HERE.parents[1]  # the checkout
DRIVER = HERE / "gpu_check.py"  # the one command; its child processes run it again with an internal flag
FULL = {"emb": 400, "hid": 1152, "layers": 3, "vocab": 60000, "bs": 128, "seq_len": 80, "clas_bs": 128}
TINY = {"emb": 16, "hid": 24, "layers": 2, "vocab": 2000, "bs": 8, "seq_len": 16, "clas_bs": 8}


# ---------------------------------------------------------------- results: checks, JSON, log

class Checks:
    """The pass/fail checks of one part: name, pass, measured value, tolerance."""

    def __init__(self):
        self.items: list[dict] = []

    def add(self, name: str, ok: bool, value=None, tolerance=None, note: str | None = None) -> bool:
        item = {"name": name, "pass": bool(ok), "value": value, "tolerance": tolerance}
        if note:
            item["note"] = note
        self.items.append(item)
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {value}" + (f" (tolerance {tolerance})" if tolerance else ""))
        return bool(ok)

    def result(self, figure: str, **details) -> dict:
        status = "pass" if self.items and all(c["pass"] for c in self.items) else "fail"
        return {"status": status, "figure": figure, "checks": self.items, "details": details}


def clean(obj):
    """JSON-ready: non-finite floats become strings ('nan', 'inf'), tuples lists, paths strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


def save_json(path: Path, obj) -> None:
    """Write `obj` as indented JSON, atomically (a kill leaves the previous version)."""
    with atomic_write(path, "w") as f:
        json.dump(clean(obj), f, indent=1)


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


Tee = runs.Tee  # stdout copied line by line into the log file (awdlstm/runs.py)


def sub_env(tiny: bool) -> dict:
    """The environment of every subprocess: the checkout (and scripts/) first on PYTHONPATH, no buffering."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "scripts")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(PYTHONPATH=os.pathsep.join(paths), PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env.pop("WORLD_SIZE", None)  # a parent under torchrun must not make the scripts join its group
    if tiny:
        env["OMP_NUM_THREADS"] = "1"
    return env


def run_cmd(cmd: list[str], timeout: float, env: dict, prefix: str = "    ") -> dict:
    """Run `cmd` in its own process group, echoing its output; after `timeout` s the group is ended
    (SIGTERM, then SIGKILL). Returns rc, timed_out, seconds and the last lines of output."""
    t0 = time.time()
    print(f"  $ {' '.join(str(c) for c in cmd)}  (timeout {timeout:.0f} s)", flush=True)
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    tail: collections.deque[str] = collections.deque(maxlen=300)

    def pump():
        for line in proc.stdout:
            line = line.rstrip("\n").split("\r")[-1]
            tail.append(line)
            print(prefix + line, flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        timed_out = True
        _end_group(proc)
    reader.join(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers left in the group
    return {"cmd": [str(c) for c in cmd], "rc": proc.returncode, "timed_out": timed_out,
            "seconds": round(time.time() - t0, 1), "tail": list(tail)}


def _end_group(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 3), (signal.SIGKILL, 2)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def last_json(lines: list[str]) -> dict | None:
    """The last line of output that parses as a JSON object (bench.py --json prints one)."""
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def cmd_failure(r: dict) -> str | None:
    """Why a subprocess run failed, in one line (None when it exited 0)."""
    if r["timed_out"]:
        return f"timed out after {r['seconds']} s"
    if r["rc"] != 0:
        last = next((ln for ln in reversed(r["tail"]) if ln.strip()), "no output")
        return f"exit status {r['rc']}: {last.strip()[:300]}"
    return None


def ctx_for_child(ctx: dict) -> dict:
    """What a child process gets: everything but the earlier results and the progress callback."""
    return {k: v for k, v in ctx.items() if k not in ("previous", "report")}


# ---------------------------------------------------------------- the machine

def host_info(device: str) -> dict:
    """Python, torch, CUDA, cuDNN, the GPU, the CPU, and where our packages were imported from."""
    import numpy

    from awdlstm import data, tokenizers
    from awdlstm.precision import cpu_has_fast_bf16
    info = {"python": platform.python_version(), "executable": sys.executable, "torch": torch.__version__,
            "numpy": numpy.__version__, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_native_bf16": cpu_has_fast_bf16(),
            "tokenizers_from": str(Path(tokenizers.__file__).parent), "data_from": str(Path(data.__file__).parent),
            "checkout": str(ROOT)}
    for mod in ("regex", "tqdm", "matplotlib"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001 - recorded, not fatal here
            info[mod] = f"missing ({type(e).__name__})"
    if device == "cuda":  # no CUDA context here: the GPU's details come from the first part's process (gpu_info)
        info.update(cuda=torch.version.cuda, gpu_count=torch.cuda.device_count())
    return info


def gpu_info() -> dict:
    """The GPU, cuDNN and the default TF32 flags, read in a part's own process (the parent makes no CUDA context)."""
    p = torch.cuda.get_device_properties(0)
    return {"gpu": p.name, "gpu_memory_GiB": round(p.total_memory / 2**30, 1), "capability": f"{p.major}.{p.minor}",
            "cudnn": torch.backends.cudnn.version(), "bf16_supported": torch.cuda.is_bf16_supported(),
            "tf32_defaults": tf32_state()}


def tf32_state() -> dict:
    """The TF32 flags as they are (the defaults, outside the parity part)."""
    b = torch.backends
    state = {}
    if hasattr(b, "fp32_precision"):
        for name, obj in (("matmul", b.cuda.matmul), ("cudnn_rnn", b.cudnn.rnn), ("cudnn_conv", b.cudnn.conv)):
            with contextlib.suppress(AttributeError, RuntimeError):
                state[name] = obj.fp32_precision
        return state
    return {"matmul_allow_tf32": b.cuda.matmul.allow_tf32, "cudnn_allow_tf32": b.cudnn.allow_tf32}


# ---------------------------------------------------------------- differences, device vs CPU

def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return float((a - b).abs().max()) if a.numel() else 0.0


def rel_maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (b the CPU reference)."""
    scale = float(b.detach().float().abs().max()) if b.numel() else 0.0
    return maxdiff(a, b) / scale if scale > 0 else maxdiff(a, b)
