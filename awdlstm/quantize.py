"""Int8 inference on a CPU: a copy of a trained model whose LSTMs and Linear layers compute in 8-bit integers.

Dynamic quantization (torch's `quantize_dynamic`, fbgemm kernels): the weights are stored as int8 with one
scale per matrix, the activations are quantized on the fly at every product, the results come back in
fp32. On CPUs without native bf16 (AVX2 only) this is the one lower precision that is faster than fp32:
int8 multiply-adds (`vpmaddubsw`) do about twice the work of fp32 FMAs per instruction.

For inference only: in eval mode a `WeightDropout` is its LSTM with the raw weights, so each one is
replaced by a quantized `nn.LSTM` (same forward signature); the dropouts are identities in eval mode.
The original model is left untouched. Measured on a 2-core AVX2 CPU (scripts/bench.py clas): ~2.7x the fp32
reviews per CPU-second at 400/1152/3, but slower than fp32 for a small 64/192/2 model, whose int8 predictions
agreed with fp32 on 99.0% of the 5,000 validation reviews (mean |p_int8 - p_fp32| 0.003; the disagreements sit
at p ~ 0.5). Check the agreement on your own model and data before using it.
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from .dropout import WeightDropout


def _quantize_dynamic(module: nn.Module, types: set[type]) -> nn.Module:
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao on every call
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, types, dtype=torch.qint8)


def quantize_int8(model: nn.Module, linear: bool = True) -> nn.Module:
    """An eval-mode copy of `model` (a `TextClassifier` or `LanguageModel`) with int8 LSTMs (and Linear
    layers if `linear`), for CPU inference. Raises when the CPU build of torch has no int8 engine."""
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in ("fbgemm", "x86", "qnnpack")):
        raise RuntimeError(f"this torch build has no int8 engine (supported: {engines})")
    q = copy.deepcopy(model).cpu().eval()
    for parent in q.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, WeightDropout):  # eval mode: the LSTM with its raw weights
                setattr(parent, name, _quantize_dynamic(nn.Sequential(child.module), {nn.LSTM})[0])
    if linear:
        q = _quantize_dynamic(q, {nn.Linear})
    return q
