"""Int8 inference on a CPU: a copy of a trained model whose LSTMs (and LM decoder) compute in 8-bit integers.

Dynamic quantization (torch's `quantize_dynamic`, fbgemm kernels): the weights are stored as int8 with one
scale per output row (per channel), the activations are quantized on the fly at every product, the results
come back in fp32. On CPUs without native bf16 (AVX2 only) this is the one lower precision that can beat
fp32: int8 multiply-adds (`vpmaddubsw`) do more work per instruction than fp32 FMAs.

For inference only: in eval mode a `WeightDropout` is its LSTM with the raw weights, so each one is
replaced by a quantized `nn.LSTM` (same forward signature); the dropouts are identities in eval mode. A
language model's decoder (vocab x emb_sz, the biggest matrix) is quantized too; a classifier's head stays in
fp32 (it is tiny, and its output decides the class). The original model is left untouched.

Predictions can differ from fp32's where p is near 0.5 (docs/benchmarks.md gives the measured agreement): check it
on your own model and data before relying on it (`scripts/dev/bench.py clas --model RUN`).
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from .classifier import TextClassifier
from .dropout import WeightDropout
from .model import LanguageModel


def _quantize_dynamic(module: nn.Module, types: set[type]) -> nn.Module:
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig  # one int8 scale per output row
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao on every call
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, dict.fromkeys(types, qconfig), dtype=torch.qint8)


def quantize_int8(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` (a `TextClassifier` or `LanguageModel`) with int8 LSTMs and, for a
    language model, an int8 decoder, for CPU inference. Any other module (`nn.Sequential(nn.Linear)` say) has
    its Linear layers quantized. Raises when the CPU build of torch has no int8 engine."""
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in ("fbgemm", "x86", "qnnpack")):
        raise RuntimeError(f"this torch build has no int8 engine (supported: {engines})")
    q = copy.deepcopy(model).cpu().eval()
    for parent in q.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, WeightDropout):  # eval mode: the LSTM with its raw weights
                setattr(parent, name, _quantize_dynamic(nn.Sequential(child.module), {nn.LSTM})[0])
    if isinstance(q, LanguageModel):
        q.decoder.decoder = _quantize_dynamic(nn.Sequential(q.decoder.decoder), {nn.Linear})[0]
    elif not isinstance(q, TextClassifier):
        q = _quantize_dynamic(q, {nn.Linear})
    return q
