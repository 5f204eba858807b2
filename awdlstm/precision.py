"""Mixed precision: which autocast (if any) a run uses, chosen by `precision` = 'auto'|'fp32'|'bf16'|'fp16'.

What 'auto' picks, and why:
* CUDA: bf16 autocast where the GPU supports it, else fp16 autocast with a `GradScaler`: on a GPU the
  half-precision matrix units are many times faster than fp32 for every workload here.
* CPU: fp32, unless bf16 has been measured faster than fp32 at equal quality for that workload (language-model
  training, classifier training) on a CPU with native bf16: such a workload is listed in `CPU_BF16_WORKLOADS`,
  and 'auto' picks bf16 for it only where `cpu_has_fast_bf16()`. A CPU's bf16 matrix peak being higher does not
  make a whole training step faster: an LSTM step is many small, memory-bound operations, and autocast adds a
  cast of every weight and activation (the language model's unfused bf16 step, which stores the logits, is
  slower than its fused fp32 one), so only a measurement of the workload itself (scripts/bench.py, with the
  host kind beside the figures in the README) can put it on the list. Language-model training is on it, with
  its decoder and loss fused in bf16 (fused_loss_bf16.py, chosen by `Learner`); on CPUs without native bf16
  every workload stays fp32.
An explicit 'bf16' is honoured on any CPU with native bf16 (AVX512-BF16 / AMX, as oneDNN reports them);
without them bf16 is emulated and far slower than fp32 (and oneDNN's LSTM rejects it), so it is refused with
a clear message. The weights, the optimizer, the loss, AR/TAR and the metrics always stay in fp32; token ids
stay integers.
"""
from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
WORKLOADS = ("lm", "clas")  # language-model training, classifier training (what `Learner` trains)
# The workloads for which bf16 was measured faster than fp32 at equal quality on a CPU with native bf16
# (scripts/bench.py; figures and host in the README): 'auto' picks bf16 for these, there, and fp32 otherwise.
# 'lm': language-model training with the bf16 fused decoder + loss (fused_loss_bf16.py), the same train
# perplexity after the same steps. 'clas' (classifier training) has not been measured: fp32.
CPU_BF16_WORKLOADS: frozenset[str] = frozenset({"lm"})


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


def auto_precision(device: torch.device, workload: str | None = None) -> str:
    """What 'auto' means for `workload` ('lm' | 'clas' | None = unknown) on `device` (the rule above)."""
    if workload is not None and workload not in WORKLOADS:
        raise ValueError(f"workload must be one of {WORKLOADS} or None, got {workload!r}")
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and workload in CPU_BF16_WORKLOADS and cpu_has_fast_bf16():
        return "bf16"
    return "fp32"


def resolve_precision(precision: str, device: torch.device, workload: str | None = None) -> Precision:
    """Turn 'auto'|'fp32'|'bf16'|'fp16' and a device into a `Precision` ('auto' per `auto_precision`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    kind = device.type
    if precision == "auto":
        precision = auto_precision(device, workload)
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
