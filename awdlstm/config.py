"""The AWD-LSTM's sizes and dropouts: `AWDLSTMConfig`, fastai's `awd_lstm_lm_config` and `awd_lstm_clas_config`.

The five dropouts (embedding, input, weight, hidden, output) are the ones chapter 12 adds to its LSTM in
"Regularizing an LSTM"; `drop_mult` scales them all, as in chapter 10's `language_model_learner(...,
drop_mult=0.3)`. The network they configure is in model.py.

    >>> lm_config(drop_mult=0.5).dropouts()["hidden_p"]
    0.075
    >>> clas_config().dropouts()["output_p"]
    0.4
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class AWDLSTMConfig:
    """Sizes and dropouts of an AWD-LSTM. The defaults are fastai's `awd_lstm_lm_config`.

    The effective dropout probabilities are the `*_p` fields times `drop_mult` (fastai's `drop_mult`
    argument of `language_model_learner` / `text_classifier_learner`); see `dropouts()`.
    """

    emb_sz: int = 400
    n_hid: int = 1152
    n_layers: int = 3
    pad_token: int = 1
    hidden_p: float = 0.15
    input_p: float = 0.25
    embed_p: float = 0.02
    weight_p: float = 0.2
    output_p: float = 0.1
    tie_weights: bool = True
    out_bias: bool = True
    drop_mult: float = 1.0

    def __post_init__(self):
        for name in ("emb_sz", "n_hid", "n_layers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"AWDLSTMConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name, p in self.dropouts().items():
            if not 0.0 <= p < 1.0:
                raise ValueError(f"AWDLSTMConfig.{name} * drop_mult must be in [0, 1), got {p}")

    def dropouts(self) -> dict[str, float]:
        """The dropout probabilities actually used: each `*_p` times `drop_mult`, as fastai computes them."""
        return {f.name: getattr(self, f.name) * self.drop_mult for f in fields(self) if f.name.endswith("_p")}

    def to_dict(self) -> dict:
        """The config as a JSON-ready dict (saved beside the weights)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AWDLSTMConfig:
        """Rebuild a config saved by `to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"AWDLSTMConfig: unknown keys {sorted(unknown)}")
        return cls(**d)


CLAS_DROPOUTS = dict(output_p=0.4, hidden_p=0.3, input_p=0.4, embed_p=0.05, weight_p=0.5)


def lm_config(**kw) -> AWDLSTMConfig:
    """fastai's `awd_lstm_lm_config` (language model), with any field overridden by `kw`."""
    return AWDLSTMConfig(**kw)


def clas_config(**kw) -> AWDLSTMConfig:
    """fastai's `awd_lstm_clas_config` (classifier encoder), with any field overridden by `kw`."""
    return AWDLSTMConfig(**{**CLAS_DROPOUTS, **kw})
