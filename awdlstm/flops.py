"""How much arithmetic an AWD-LSTM does per token: the yardstick of the benchmarks (scripts/dev/bench.py).

Only the matrix products are counted (2 FLOPs per multiply-add); the gates' sigmoids and tanhs, the
dropouts and the softmax are a few percent at these sizes. One LSTM layer with `n_in` inputs and `n_out`
hidden units does `4 * n_out * (n_in + n_out)` multiply-adds per token (four gates, input and hidden
weights); the tied decoder `emb_sz * vocab_sz`. Training costs three times the forward pass: the
backward pass computes a gradient for the inputs and one for the weights, each as large as the forward.
"""
from __future__ import annotations

from .model import AWDLSTMConfig


def lstm_layer_sizes(cfg: AWDLSTMConfig) -> list[tuple[int, int]]:
    """(n_in, n_out) of every LSTM layer of the AWD-LSTM: emb -> n_hid -> ... -> n_hid -> emb."""
    n = cfg.n_layers
    return [(cfg.emb_sz if i == 0 else cfg.n_hid, cfg.emb_sz if i == n - 1 else cfg.n_hid) for i in range(n)]


def encoder_flops_per_token(cfg: AWDLSTMConfig) -> int:
    """Forward FLOPs of the AWD-LSTM encoder (the stacked LSTMs) for one token.

    >>> encoder_flops_per_token(AWDLSTMConfig())  # 400/1152/3: ~40.5 MFLOP
    40503296
    """
    return sum(2 * 4 * n_out * (n_in + n_out) for n_in, n_out in lstm_layer_sizes(cfg))


def lm_flops_per_token(cfg: AWDLSTMConfig, vocab_sz: int, training: bool = False) -> int:
    """FLOPs of the language model (encoder + the decoder's `emb_sz x vocab_sz` product) for one token;
    `training=True` adds the backward pass (x3).

    >>> lm_flops_per_token(AWDLSTMConfig(emb_sz=128, n_hid=512), 60000, training=True) / 1e6
    68.493312
    """
    forward = encoder_flops_per_token(cfg) + 2 * cfg.emb_sz * vocab_sz
    return forward * (3 if training else 1)


def lm_weight_bytes_per_token(cfg: AWDLSTMConfig, vocab_sz: int, weight_bytes: int = 4) -> int:
    """Bytes of weights the language model must read to predict one token when it reads one token at a time
    (generation, batch 1): every LSTM weight and bias, the decoder's `vocab_sz x emb_sz` matrix and bias, and
    one embedding row. Matrices count `weight_bytes` per entry (4 in fp32, 1 in int8), biases and the
    embedding row 4. A lower bound on the memory traffic per word, hence the memory roof of generation.

    >>> lm_weight_bytes_per_token(AWDLSTMConfig(), 60000) / 1e6  # 400/1152/3, fp32: ~177 MB per word
    177.33472
    """
    return encoder_weight_bytes(cfg, weight_bytes) + cfg.emb_sz * vocab_sz * weight_bytes + (vocab_sz + cfg.emb_sz) * 4


def encoder_weight_bytes(cfg: AWDLSTMConfig, weight_bytes: int = 4) -> int:
    """Bytes of the stacked LSTMs' weights (`weight_bytes` per entry) and biases (4 each: b_ih and b_hh).

    >>> encoder_weight_bytes(AWDLSTMConfig()) / 1e6  # 400/1152/3 in fp32
    81.09312
    """
    sizes = lstm_layer_sizes(cfg)
    return sum(4 * n_out * (n_in + n_out) * weight_bytes + 2 * 4 * n_out * 4 for n_in, n_out in sizes)
