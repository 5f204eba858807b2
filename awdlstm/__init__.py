"""The AWD-LSTM network (built in chapter 12), its weights on disk, and the loops that train it (chapter 10).

The book's folders tokenizers/ and data/ install inside this package, as `awdlstm.tokenizers` and
`awdlstm.data`. The names below are imported from their modules the first time they are used (PEP 562),
so that `import awdlstm.tokenizers` does not import torch, while `from awdlstm import Learner` works as ever.
"""
import importlib
import os
import sys
import types

# In the repository the two folders sit beside this one, where a reader of the book looks for them; installed
# (pyproject.toml's package-dir), they are inside it. Run from a checkout (installed editable, or not installed
# with the checkout on sys.path), awdlstm.tokenizers and awdlstm.data are found beside this folder.
_here = os.path.dirname(os.path.abspath(__file__))
_checkout = os.path.dirname(_here)
if not os.path.isdir(os.path.join(_here, "tokenizers")) and os.path.isfile(
        os.path.join(_checkout, "tokenizers", "__init__.py")):
    __path__.append(_checkout)

_NAMES = {  # module -> the names it gives the package
    "checkpoint": ["load_encoder", "load_model", "save_encoder", "save_model"],
    "classifier": ["LinBnDrop", "PoolingLinearClassifier", "SentenceEncoder", "TextClassifier",
        "masked_concat_pool"],
    "dropout": ["EmbeddingDropout", "RNNDropout", "WeightDropout", "dropout_mask"],
    "generate": ["decode_spec_tokens", "decode_text", "generate", "generate_tokens"],
    "interpret": ["Interpretation", "attention_html", "intrinsic_attention", "write_attention_html"],
    "lr_find": ["lr_find"],
    "model": ["AWDLSTM", "AWDLSTMConfig", "LanguageModel", "LinearDecoder", "clas_config", "lm_config"],
    "optim": ["Adam"],
    "predict": ["Classifier", "load_classifier", "predict", "predict_texts"],
    "pretrained": ["LoadedLM", "from_fastai_state_dict", "load_fastai_lm", "match_embeds",
        "read_itos_pickle"],
    "recipes": ["CLAS_PRESETS", "LM_PRESETS", "PRETRAIN_PRESETS", "ClasRecipe", "LMRecipe"],
    "schedule": ["OneCycle", "even_mults"],
    "train": ["FitInterrupted", "Learner", "NonFiniteLoss", "TrainConfig"],
    "train_checkpoint": ["set_seed"],
    "ulmfit": ["ClasResult", "LMResult", "fine_tune_lm", "finetune_lm", "gradual_unfreeze", "resume_run",
        "train_classifier"],
}
_MODULE_OF = {name: module for module, names in _NAMES.items() for name in names}

__all__ = [
    "AWDLSTM", "AWDLSTMConfig", "EmbeddingDropout", "LanguageModel", "LinBnDrop", "LinearDecoder", "LoadedLM",
    "PoolingLinearClassifier", "RNNDropout", "SentenceEncoder", "TextClassifier", "WeightDropout", "clas_config",
    "decode_spec_tokens", "decode_text", "dropout_mask", "from_fastai_state_dict", "generate", "generate_tokens",
    "lm_config", "load_encoder", "load_fastai_lm", "load_model", "masked_concat_pool", "match_embeds",
    "read_itos_pickle", "save_encoder", "save_model",
    "Interpretation", "attention_html", "intrinsic_attention", "write_attention_html",
    "Adam", "FitInterrupted", "Learner", "NonFiniteLoss", "OneCycle", "TrainConfig", "even_mults", "lr_find",
    "set_seed",
    "CLAS_PRESETS", "LM_PRESETS", "PRETRAIN_PRESETS", "ClasRecipe", "LMRecipe",
    "ClasResult", "LMResult", "fine_tune_lm", "finetune_lm", "gradual_unfreeze", "resume_run", "train_classifier",
    "Classifier", "load_classifier", "predict", "predict_texts",
]


def __getattr__(name: str) -> object:
    """`awdlstm.Learner` and the other names above: the module is imported on first use."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


class _Package(types.ModuleType):
    """Three names are both a module and the function it defines (generate, lr_find, predict): importing the
    module sets the package's attribute to the module; the package keeps the function, as `from .generate
    import generate` always did."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _MODULE_OF.get(name) == name:
            value = getattr(value, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package  # as Python's docs customize a module's attribute setting
