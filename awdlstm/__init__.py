"""The AWD-LSTM network (built in chapter 12), its weights on disk, and the loops that train it (chapter 10)."""
from .checkpoint import load_encoder, load_model, save_encoder, save_model
from .classifier import (
    LinBnDrop,
    PoolingLinearClassifier,
    SentenceEncoder,
    TextClassifier,
    masked_concat_pool,
)
from .dropout import EmbeddingDropout, RNNDropout, WeightDropout, dropout_mask
from .generate import decode_spec_tokens, decode_text, generate, generate_tokens
from .interpret import Interpretation, attention_html, intrinsic_attention, write_attention_html
from .lr_find import lr_find
from .model import AWDLSTM, AWDLSTMConfig, LanguageModel, LinearDecoder, clas_config, lm_config
from .optim import Adam
from .predict import Classifier, load_classifier, predict, predict_texts
from .pretrained import LoadedLM, from_fastai_state_dict, load_fastai_lm, match_embeds, read_itos_pickle
from .recipes import CLAS_PRESETS, LM_PRESETS, PRETRAIN_PRESETS, ClasRecipe, LMRecipe
from .schedule import OneCycle, even_mults
from .train import FitInterrupted, Learner, NonFiniteLoss, TrainConfig
from .train_checkpoint import set_seed
from .ulmfit import (
    ClasResult,
    LMResult,
    fine_tune_lm,
    finetune_lm,
    gradual_unfreeze,
    resume_run,
    train_classifier,
)

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
