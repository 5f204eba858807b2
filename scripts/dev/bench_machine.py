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

ROOF_SECONDS = 0.4  # each FLOP peak is measured this long (the bandwidth 1.5x); bench.py --roof-seconds


def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work (timings on CUDA are otherwise too short); nothing on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_per_s(op, work: float, device: torch.device, seconds: float, trials: int = 3) -> float:
    """The best of `trials` timings of `op` (each >= 2 calls and `seconds` / trials long): `work` per second.
    The best, not the mean: on a shared machine a trial that lands in a busy moment measures the neighbours."""
    best = 0.0
    with torch.inference_mode():
        op()
        sync(device)
        for _ in range(trials):
            reps, t0 = 0, time.perf_counter()
            while reps < 2 or time.perf_counter() - t0 < seconds / trials:
                op()
                reps += 1
                if device.type == "cuda" and reps % 10 == 0:
                    sync(device)
            sync(device)
            best = max(best, work * reps / (time.perf_counter() - t0))
    return best


def matmul_peaks(dtype: str, device: torch.device, seconds: float = 0.4) -> dict[str, float]:
    """GFLOP/s of square matrix products in `dtype` ('fp32', 'bf16', 'fp16', 'int8': fbgemm's dynamic int8
    Linear) on `device`, per library: on a CPU both MKL's (torch.mm) and oneDNN's (the library of torch's
    CPU LSTM), since which one is faster depends on the CPU (MKL picks its kernels by CPU vendor; on an AMD
    EPYC the classifier's oneDNN LSTM ran at 169% of a peak taken from one short torch.mm trial); the best of
    three trials of each."""
    slow = device.type == "cpu" and dtype == "bf16" and not cpu_has_fast_bf16()
    n = 4096 if device.type == "cuda" else (384 if slow else 1024)
    a = torch.randn(n, n, device=device)
    work = 2 * n**3 / 1e9
    if dtype == "int8":
        lin = quantize_int8(torch.nn.Sequential(torch.nn.Linear(n, n, bias=False)))
        return {"fbgemm": _best_per_s(lambda: lin(a), work, device, seconds)}
    a = a.to({"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype])
    b = a.clone()
    out = {"mm": _best_per_s(lambda: a @ b, work, device, seconds)}
    if device.type == "cpu" and dtype in ("fp32", "bf16") and not slow and torch.backends.mkldnn.is_available():
        am, bm = a.to_mkldnn(), b.to_mkldnn()
        out["onednn"] = _best_per_s(lambda: torch._C._nn.mkldnn_linear(am, bm, None), work, device, seconds)
    return out


def matmul_peak(dtype: str, device: torch.device, seconds: float = 0.4) -> float:
    """The matmul peak of `dtype`: the best library's GFLOP/s (`matmul_peaks`)."""
    return max(matmul_peaks(dtype, device, seconds).values())


def peaks(device: torch.device, extra: tuple[str, ...] = (), before: dict[str, float] | None = None,
          seconds: float | None = None) -> dict[str, float]:
    """The matmul peaks this run compares against (fp32 and bf16 always). Called before and after the timed
    part (`before`: the first call's result): each peak is the larger of the two measurements, so a peak
    measured while the machine was busy does not make the benchmark look faster than the machine."""
    names = ["fp32", "bf16", *(e for e in extra if e not in ("fp32", "bf16"))]
    out = {k: round(matmul_peak(k, device, seconds or ROOF_SECONDS), 1) for k in names}
    if before:
        out = {k: max(v, before.get(k, 0.0)) for k, v in out.items()}
    print(("matmul peak GFLOP/s (best of before and after): " if before else "matmul peak GFLOP/s: ")
          + ", ".join(f"{k} {v:,.1f}" for k, v in out.items())
          + ("" if device.type != "cpu" else f"  (native bf16: {cpu_has_fast_bf16()})"))
    return out


def memory_bandwidth(device: torch.device, nbytes: float, seconds: float | None = None,
                     before: float | None = None) -> float:
    """GB/s at which this machine reads a buffer of `nbytes` (at least 1 MiB): the larger of a read (`sum`)
    and a copy (read + write, both counted), the best of three trials each, with torch's threads. Measured
    at the size of the data a benchmark reads, so the caches count as they count for it. `before`: an
    earlier measurement in the same run; the larger is returned."""
    n = max(int(nbytes), 2**20) // 4
    x = torch.randn(n, device=device)
    y = torch.empty_like(x)
    gb, seconds = 4 * n / 1e9, seconds or 1.5 * ROOF_SECONDS
    read = _best_per_s(lambda: x.sum(), gb, device, seconds / 2)
    copy = _best_per_s(lambda: y.copy_(x), 2 * gb, device, seconds / 2)
    return round(max(read, copy, before or 0.0), 2)


def roofline(per_s: float, unit: str, flops_per_unit: float, peak_gflops: float, peak_name: str,
             bytes_per_unit: float | None = None, bandwidth_gbs: float | None = None) -> dict:
    """The roof that bounds a benchmark and its share of it (the roofline model): the compute roof is the
    FLOP peak over the FLOPs per unit, the memory roof the bandwidth over the bytes that must be read per
    unit (a lower bound: each weight once); the lower roof binds. Returns the roofs in `unit`/s, which one
    binds, and `share_pct` = 100 * per_s / that roof."""
    roofs = {"compute": {"roof_per_s": round(peak_gflops * 1e9 / flops_per_unit, 2), "peak": peak_name,
                         "GFLOP_per_s": peak_gflops, "FLOP_per_unit": int(flops_per_unit)}}
    if bytes_per_unit and bandwidth_gbs:
        roofs["memory"] = {"roof_per_s": round(bandwidth_gbs * 1e9 / bytes_per_unit, 2),
                           "GB_per_s": bandwidth_gbs, "bytes_per_unit": int(bytes_per_unit)}
    bound = min(roofs, key=lambda k: roofs[k]["roof_per_s"])
    roof = roofs[bound]["roof_per_s"]
    share = 100 * per_s / roof
    return {"unit": unit, "bound": bound, "roof_per_s": roof, "share_pct": round(share, 1 if share >= 1 else 4), **roofs}


def roof_line(r: dict) -> str:
    """One printed line: the binding roof, how it is made, and the share of it."""
    c, m = r["compute"], r.get("memory")
    what = (f"{m['GB_per_s']:,.1f} GB/s / {m['bytes_per_unit'] / 1e6:,.1f} MB per {r['unit']}" if r["bound"] == "memory"
            else f"{c['peak']} peak {c['GFLOP_per_s']:,.1f} GFLOP/s / {c['FLOP_per_unit'] / 1e6:,.2f} MFLOP per {r['unit']}")
    share = f"{r['share_pct']}% of it" + ("  (above 100%: a roof was measured low; the machine was busy?)"
                                          if r["share_pct"] > 100 else "")
    return f"roof: {r['bound']} bound, {r['roof_per_s']:,.1f} {r['unit']}s/s ({what}); reached {share}"


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


