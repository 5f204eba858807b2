"""Mixed precision: which autocast (if any) a run uses, chosen by `precision` = 'auto'|'fp32'|'bf16'|'fp16'.

What 'auto' picks, and why:
* CUDA: bf16 autocast where the GPU supports it, else fp16 autocast with a `GradScaler`: on a GPU the
  half-precision matrix units are many times faster than fp32 for every workload here.
* CPU: fp32, unless bf16 is faster for that workload on this very CPU. Two things must hold. The workload
  (language-model training, classifier training) is in `CPU_BF16_WORKLOADS`: bf16 was measured to reach the
  same quality as fp32 for it (scripts/dev/bench.py, with the host kind beside the figures in docs/benchmarks.md).
  And a training step of the run itself, timed once in each precision before it starts
  (`time_bf16_speedup`), is at least `BF16_MIN_SPEEDUP` times faster in bf16. The CPU's flags cannot tell:
  a language-model training step (scripts/dev/bench.py lm, 1 thread) ran 1.8x faster in bf16 than in fp32 on
  an AMD EPYC with AVX512-BF16, and 0.70x as fast on an Intel Xeon (lscpu model 207) that has AVX512-BF16
  but no AMX among its flags (docs/benchmarks.md, "bf16 against fp32 on a CPU"). An LSTM step is many small, memory-bound
  operations and autocast adds a cast of every weight and activation, so native bf16 instructions do not
  make a whole step faster by themselves. Language-model training is on the list, with its decoder and loss
  fused in bf16 (fused_loss_bf16.py, chosen by `Learner`); on CPUs without native bf16 nothing is timed and
  every workload stays fp32.
An explicit 'bf16' is honoured on any CPU with native bf16 (AVX512-BF16 / AMX, as oneDNN reports them);
without them bf16 is emulated and far slower than fp32 (and oneDNN's LSTM rejects it), so it is refused with
a clear message. The weights, the optimizer, the loss, AR/TAR and the metrics always stay in fp32; token ids
stay integers.
"""
from __future__ import annotations

import contextlib
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
WORKLOADS = ("lm", "clas")  # language-model training, classifier training (what `Learner` trains)
# The workloads for which bf16 was measured faster than fp32 at equal quality on a CPU with native bf16
# (scripts/dev/bench.py; figures and host in docs/benchmarks.md): 'auto' times these in both precisions on such a CPU,
# and keeps fp32 for the others. 'lm': language-model training with the bf16 fused decoder + loss
# (fused_loss_bf16.py), the same train perplexity after the same steps. 'clas' (classifier training) has not
# been measured: fp32.
CPU_BF16_WORKLOADS: frozenset[str] = frozenset({"lm"})
# bf16 must make the timed step this much faster, or fp32 (the reference precision, fastai's numbers) is kept:
# a margin over the few percent by which two timings of one step differ, so hosts near a tie keep fp32.
BF16_MIN_SPEEDUP = 1.1


def cpu_has_fast_bf16() -> bool:
    """True when this CPU computes bf16 matrix products natively (oneDNN's bf16 support check)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_model() -> str:
    """The CPU's model name as the OS reports it (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def host_kind() -> str:
    """One line naming this host's kind for the precision choice: the CPU model and whether it has native bf16."""
    bf16 = "native bf16" if cpu_has_fast_bf16() else "no native bf16 (bf16 tests skipped)"
    return f"host: {cpu_model()}, {torch.get_num_threads()} torch threads, {bf16}, torch {torch.__version__}"


@dataclass(frozen=True)
class Precision:
    """The resolved choice: `dtype` for autocast (None = fp32) and whether a `GradScaler` is needed."""

    name: str
    device_type: str
    dtype: torch.dtype | None
    use_scaler: bool

    def autocast(self):
        """Context manager for the forward pass (a no-op in fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def time_bf16_speedup(step: Callable[[Precision], None], repeats: int = 2) -> float:
    """How many times faster `step` (one training step) runs in bf16 than in fp32 on this CPU.

    Each precision runs once untimed first (oneDNN builds its kernels then), then the two alternate `repeats`
    times; the fastest run of each is kept. Returns fp32 seconds / bf16 seconds."""
    fp32, bf16 = Precision("fp32", "cpu", None, False), Precision("bf16", "cpu", torch.bfloat16, False)
    best = {"fp32": math.inf, "bf16": math.inf}
    step(fp32)
    step(bf16)
    for _ in range(repeats):
        for p in (fp32, bf16):
            t0 = time.perf_counter()
            step(p)
            best[p.name] = min(best[p.name], time.perf_counter() - t0)
    return best["fp32"] / best["bf16"]


def auto_precision(device: torch.device, workload: str | None = None,
                   bf16_speedup: Callable[[], float | None] | None = None) -> str:
    """What 'auto' means for `workload` ('lm' | 'clas' | None = unknown) on `device` (the rule above).

    `bf16_speedup` times the workload's step (it returns `time_bf16_speedup`'s ratio, or None when there is
    nothing to time); it is called only on a CPU with native bf16, for a listed workload. Without it: fp32."""
    if workload is not None and workload not in WORKLOADS:
        raise ValueError(f"workload must be one of {WORKLOADS} or None, got {workload!r}")
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and workload in CPU_BF16_WORKLOADS and cpu_has_fast_bf16() and bf16_speedup:
        speedup = bf16_speedup()
        if speedup is not None and speedup >= BF16_MIN_SPEEDUP:
            return "bf16"
    return "fp32"


def resolve_precision(precision: str, device: torch.device, workload: str | None = None,
                      bf16_speedup: Callable[[], float | None] | None = None) -> Precision:
    """Turn 'auto'|'fp32'|'bf16'|'fp16' and a device into a `Precision` ('auto' per `auto_precision`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    kind = device.type
    if precision == "auto":
        precision = auto_precision(device, workload, bf16_speedup)
    if precision == "fp32":
        return Precision("fp32", kind, None, False)
    if precision == "bf16":
        if kind == "cpu" and not cpu_has_fast_bf16():
            raise ValueError("precision 'bf16' on this CPU: it has no native bf16 (oneDNN reports none), where "
                             "bf16 is emulated (~100x slower) and oneDNN's LSTM refuses it; use 'fp32' or 'auto'")
        return Precision("bf16", kind, torch.bfloat16, False)
    if kind != "cuda":
        raise ValueError(f"precision 'fp16' needs a CUDA device (got {kind}); use 'bf16' or 'fp32'")
    return Precision("fp16", kind, torch.float16, True)
