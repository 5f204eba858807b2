"""What every benchmark of scripts/bench.py measures besides its own figure: the machine (load, threads), the
matrix-product peak of each precision in the same run, the peak memory of the timed part, the achieved share
of the peak, and fastai's side of the same measurement (scripts/bench_fastai.py, run in a fastai virtualenv).

Imported by bench.py as a sibling module, like pipeline.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from awdlstm.precision import cpu_has_fast_bf16
from awdlstm.quantize import quantize_int8

# ---------------------------------------------------------------- the machine: peak, memory, load


def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work (timings on CUDA are otherwise too short); nothing on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: str, device: torch.device, seconds: float = 0.4) -> float:
    """GFLOP/s of square matrix products in `dtype` ('fp32', 'bf16', 'fp16', 'int8': fbgemm's dynamic int8
    Linear) on `device`; the sizes are large enough for the library's best kernels."""
    slow = device.type == "cpu" and dtype == "bf16" and not cpu_has_fast_bf16()
    n = 4096 if device.type == "cuda" else (384 if slow else 1024)
    a = torch.randn(n, n, device=device)
    if dtype == "int8":
        lin = quantize_int8(torch.nn.Sequential(torch.nn.Linear(n, n, bias=False)))
        def op():
            return lin(a)
    else:
        a = a.to({"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype])
        b = a.clone()
        def op():
            return a @ b
    with torch.inference_mode():
        op()
        sync(device)
        reps, t0 = 0, time.perf_counter()
        while reps < 2 or time.perf_counter() - t0 < seconds:
            op()
            reps += 1
            if device.type == "cuda" and reps % 10 == 0:
                sync(device)
        sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def peaks(device: torch.device, extra: tuple[str, ...] = ()) -> dict[str, float]:
    """The matmul peaks this run compares against (fp32 and bf16 always)."""
    names = ["fp32", "bf16", *(e for e in extra if e not in ("fp32", "bf16"))]
    out = {k: round(matmul_peak(k, device), 1) for k in names}
    print("matmul peak GFLOP/s: " + ", ".join(f"{k} {v:,.1f}" for k, v in out.items())
          + ("" if device.type != "cpu" else f"  (native bf16: {cpu_has_fast_bf16()})"))
    return out


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: Linux's VmHWM (clear_refs 5) on CPU, torch's allocator peak on CUDA."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory since `reset_peak_memory`: resident set size (CPU) or allocated GPU memory, in MiB."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    try:
        with open("/proc/self/status") as f:
            return round(next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024, 1)
    except (OSError, StopIteration):
        import resource
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def machine(device: torch.device) -> dict:
    """Printed and returned with every figure: device, torch threads, 1-minute load average, torch version."""
    info = {"device": str(device), "threads": torch.get_num_threads(), "load_avg": round(os.getloadavg()[0], 2),
            "torch": torch.__version__}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    else:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    print(" ".join(f"{k} {v}" for k, v in info.items()))
    return info


def run_fastai(python: str, bench: str, docs: tuple[np.ndarray, np.ndarray], n_vocab: int, flags: list[str],
               itos: list[str] | None = None) -> dict:
    """fastai's side of a benchmark (scripts/bench_fastai.py) on the same token ids, in the interpreter `python`
    (a virtualenv with fastai 2.8), with the same number of torch threads."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "ids.npz"
        np.savez(data, ids=docs[0], offsets=docs[1], meta=json.dumps({"vocab": n_vocab, "itos": itos}))
        cmd = [python, str(Path(__file__).with_name("bench_fastai.py")), bench, "--data", str(data),
               "--threads", str(torch.get_num_threads()), *flags]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as e:
            raise FileNotFoundError(f"--fastai {python}: cannot run it ({e})") from None
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValueError(f"the fastai run failed ({' '.join(cmd[:3])} ...): {tail}")
    return json.loads(run.stdout.splitlines()[-1])


def rate(work: float, secs: float, flops: float, peak: float) -> dict:
    """`work` units and `flops` done in `secs`: per second, GFLOP/s and the share of `peak` GFLOP/s."""
    gflops = flops / secs / 1e9
    return {"seconds": round(secs, 3), "per_s": round(work / secs, 2), "GFLOP_per_s": round(gflops, 1),
            "pct_of_peak": round(100 * gflops / peak, 1) if peak else None}


