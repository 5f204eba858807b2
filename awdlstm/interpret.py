"""Which words drove a classifier's prediction: intrinsic attention, and an HTML page with the words shaded.

fastai's `TextClassificationInterpretation.intrinsic_attention` (fastai 1; the "Sequential Jacobian" of
Graves' thesis): the sensitivity of the predicted class's probability to each input word's embedding,

    emb = Embedding(ids)                               # (1, sl, emb_sz), a leaf we differentiate against
    p = softmax(head(AWDLSTM(emb)))[class_id]          # everything in eval mode: no dropout, BatchNorm frozen
    attention[t] = sum_e |dp / d emb[t, e]|            # (sl,)
    attention /= attention.max()                       # the strongest word gets 1

The document is read in one AWD-LSTM call (the gradient flows through the whole recurrence, not only inside
each bptt chunk) and pooled over the positions the classifier itself keeps (its `max_len`), so the
probabilities are exactly the model's prediction. Equal to fastai 1's numbers on fastai 2.8's modules given
the same weights (tests/test_interpret.py, tests/fixtures/intrinsic_attention.json).
"""
from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from awdlstm.tokenizers.atomic import atomic_write

from .classifier import TextClassifier


def first_kept_position(sl: int, bptt: int, max_len: int | None) -> int:
    """The first position whose output the SentenceEncoder keeps: the first bptt chunk in the last max_len tokens."""
    if max_len is None:
        return 0
    return next(i for i in range(0, sl, bptt) if sl - i <= max_len)


def intrinsic_attention(model: TextClassifier, ids: Sequence[int] | torch.Tensor, class_id: int | None = None,
                        backwards: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The book's intrinsic attention of one document: (probs (n_class,), attention (sl,) in [0, 1]).

    `ids` are the document's token ids in reading order; a backward classifier (`backwards=True`) reads
    them reversed and the attention comes back in reading order. `class_id` is the class whose probability
    is differentiated (default: the predicted one). The model's parameters get no `.grad`; its train/eval
    mode and hidden state are restored.
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 1 or ids.numel() == 0:
        raise ValueError(f"intrinsic_attention expects the ids of one non-empty document (sl,), "
                         f"got shape {tuple(ids.shape)}")
    if class_id is not None and not 0 <= class_id < model.n_class:
        raise ValueError(f"class_id {class_id} outside [0, {model.n_class})")
    awd, enc = model.encoder.module, model.encoder
    x = (ids.flip(0) if backwards else ids)[None].to(awd.encoder.weight.device)  # (1, sl)
    was_training = model.training
    model.eval()
    model.reset()
    try:  # cuDNN's LSTM backward refuses eval mode: use the native kernels here
        with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
            emb = awd.encoder(x).detach().requires_grad_(True)  # (1, sl, emb_sz), no embedding dropout
            out = awd(emb, from_embeds=True)  # (1, sl, emb_sz), the whole document in one call
            out = out[:, first_kept_position(x.size(1), enc.bptt, enc.max_len):]  # (1, kept, emb_sz)
            no_pad = torch.zeros(out.shape[:2], dtype=torch.bool, device=out.device)  # (1, kept)
            probs = model.head((out, no_pad))[0].float().softmax(-1)[0]  # (n_class,)
            k = int(probs.argmax()) if class_id is None else class_id
            (grad,) = torch.autograd.grad(probs[k], emb)  # (1, sl, emb_sz)
    finally:
        model.reset()
        model.train(was_training)
    attn = grad[0].float().abs().sum(-1)  # (sl,)
    top = attn.max()
    attn = attn / top if top > 0 else attn
    return probs.detach().cpu(), (attn.flip(0) if backwards else attn).cpu()


@dataclass
class Interpretation:
    """One document's prediction and its words' attention, ready for `attention_html`."""

    text: str
    tokens: list[str]
    attention: list[float]  # one value in [0, 1] per token
    probs: dict[str, float]  # label -> probability

    def __post_init__(self):
        if len(self.tokens) != len(self.attention):
            raise ValueError(f"Interpretation: {len(self.tokens)} tokens but {len(self.attention)} attention values")

    @property
    def label(self) -> str:
        """The predicted label."""
        return max(self.probs, key=self.probs.__getitem__)


def interpret_texts(clf, texts: Sequence[str], device: torch.device | str = "cpu",
                    progress: bool = True) -> list[Interpretation]:
    """Intrinsic attention of a trained `awdlstm.predict.Classifier` on each text, tokenized and cut to its
    max_tokens as in training (the tokens are shown as written; the model reads unknown ones as xxunk)."""
    import numpy as np
    from tqdm.auto import tqdm

    from awdlstm.tokenizers.corpus import tokenize_corpus

    clf.model.to(device)
    corpus = tokenize_corpus(list(texts), progress=False).subset(np.arange(len(texts)), clf.max_tokens)
    items = []
    for i, text in enumerate(tqdm(texts, desc="attention", disable=not progress or len(texts) < 2)):
        tokens = corpus[i]
        if not tokens:
            raise ValueError(f"text {i + 1} has no tokens")
        probs, attn = intrinsic_attention(clf.model, clf.vocab.encode(tokens), backwards=clf.backwards)
        items.append(Interpretation(text, tokens, attn.tolist(),
                                    dict(zip(clf.labels.itos, probs.tolist(), strict=True))))
    return items


def shaded_tokens(tokens: Sequence[str], attention: Sequence[float]) -> str:
    """The tokens as HTML spans shaded by attention (fastai's `piece_attn_html`): deeper colour, more attention.

    Each token is escaped with `html.escape`; hovering shows its value.
    """
    spans = []
    for tok, a in zip(tokens, attention, strict=True):
        a = min(max(float(a), 0.0), 1.0)
        spans.append(f'<span title="{a:.3f}" style="background-color: rgba(230, 97, 1, {a:.3f})">'
                     f"{html.escape(tok)}</span>")
    return " ".join(spans)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.9; }}
.doc {{ border-top: 1px solid #ccc; padding: 0.5em 0; }}
.tokens {{ font-family: monospace; }}
.tokens span {{ padding: 0.1em 0.15em; border-radius: 0.2em; }}
.probs {{ color: #555; }}
</style></head><body>
<h1>{title}</h1>
<p>Each token is shaded by its intrinsic attention: how much the probability of the predicted label changes
with the token's embedding (the gradient's absolute values summed, divided by the document's largest).
Hover over a token to see its value.</p>
{docs}
</body></html>
"""


def attention_html(items: Sequence[Interpretation], title: str = "Intrinsic attention") -> str:
    """One self-contained HTML page: for each document its predicted label, the probabilities, the shaded tokens."""
    docs = []
    for i, it in enumerate(items):
        probs = ", ".join(f"p({html.escape(k)}) = {v:.4f}" for k, v in it.probs.items())
        docs.append(f'<div class="doc"><h2>{i + 1}. {html.escape(it.label)}</h2>'
                    f'<p class="probs">{probs}</p>'
                    f'<p class="tokens">{shaded_tokens(it.tokens, it.attention)}</p></div>')
    return PAGE.format(title=html.escape(title), docs="\n".join(docs))


def write_attention_html(path: str | os.PathLike, items: Sequence[Interpretation],
                         title: str = "Intrinsic attention") -> None:
    """Write `attention_html(items, title)` to `path`, atomically (UTF-8)."""
    with atomic_write(path, "w") as f:
        f.write(attention_html(items, title))
