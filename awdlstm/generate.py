"""Text generation with a language model, chapter 10's `learn.predict(TEXT, N_WORDS, temperature=0.75)`.

fastai re-reads the whole text from a zero state for every new word; here the prompt is read once and
each sampled word is fed alone, the hidden state carrying the context (same distribution, linear time).
`generate_tokens` is that loop; `fast=True` (the default) swaps in `generate_fast.py`'s one-token step and
sampler, `fast=False` keeps `model(x)` and `torch.multinomial`.
`decode_text` turns the tokens back into readable text: it undoes xxmaj / xxup / xxrep / xxwrep (fastai's
`decode_spec_tokens`) and the spaces the tokenizer put around punctuation.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch

from awdlstm.tokenizers.rules import BOS, EOS, PAD, TK_MAJ, TK_REP, TK_UP, TK_WREP, UNK
from awdlstm.tokenizers.vocab import as_itos

from .generate_fast import fast_step, sample_inverse_cdf
from .model import LanguageModel

_DROP = {BOS, PAD, EOS, "xxfake"}
_NO_SPACE_BEFORE = {"n't", "'s", "'re", "'ve", "'m", "'ll", "'d", "/", "\\"}
_CLOSING = re.compile(r"[.,!?;:%…)\]}]+")  # punctuation that sticks to the word before
_NO_SPACE_AFTER = {"(", "[", "{", "$", "/", "\\", "#"}
_QUOTES = {'"', "'", "`", "``", "''"}


def decode_spec_tokens(tokens: Sequence[str]) -> list[str]:
    """Undo the tokenizer's markers: `xxmaj w` -> `W`, `xxup w` -> `W..W`, `xxrep n c` -> `c*n`,
    `xxwrep n w` -> n times `w` (fastai's `decode_spec_tokens`, without its bug of repeating every
    token after an xxrep). e.g. ["xxmaj", "the", "xxrep", "3", "!"] -> ["The", "!!!"]
    """
    out: list[str] = []
    rule, count = None, None
    for t in tokens:
        if t in (TK_MAJ, TK_UP, TK_REP, TK_WREP):
            rule, count = t, None
        elif rule is None:
            out.append(t)
        elif rule == TK_MAJ:
            out.append(t[:1].upper() + t[1:].lower())
            rule = None
        elif rule == TK_UP:
            out.append(t.upper())
            rule = None
        elif count is None:  # xxrep / xxwrep: the count comes first
            try:
                count = int(t)
            except ValueError:  # malformed (e.g. generated) sequence: keep the token, drop the marker
                out.append(t)
                rule = None
        else:
            out.extend([t * count] if rule == TK_REP else [t] * count)
            rule, count = None, None
    return out


def decode_text(tokens: Sequence[str]) -> str:
    """Readable text from tokens: special markers undone, xxbos/xxpad/xxeos dropped, punctuation re-attached.

    e.g. ["xxbos", "xxmaj", "i", "did", "n't", "like", "it", ",", "(", "really", ")", "."]
    -> "I didn't like it, (really)."
    """
    words = [t.replace("\u2581", " ") for t in decode_spec_tokens([t for t in tokens if t not in _DROP])]
    text, open_quote, prev = "", False, None
    for i, w in enumerate(words):
        space = prev is not None and not prev.isspace() and not w.isspace() and prev not in _NO_SPACE_AFTER
        if w in _NO_SPACE_BEFORE or _CLOSING.fullmatch(w):
            space = False
        if w in _QUOTES:
            if open_quote:
                space = False  # closing quote sticks to the word before
            open_quote = not open_quote
        elif prev in _QUOTES and open_quote:
            space = False  # word after an opening quote
        if w == "-" and prev and prev[-1:].isalnum() and i + 1 < len(words) and words[i + 1][:1].isalnum():
            space = False  # well - known -> well-known
        if prev == "-" and text.endswith("-") and not text.endswith(" -") and w[:1].isalnum():
            space = False
        text += (" " if space else "") + w
        prev = w
    return text.strip(" ")


def _itos_stoi(vocab) -> tuple[list[str], Callable[[str], int]]:
    itos = as_itos(vocab)
    if not itos:
        raise TypeError("vocab must be a non-empty list of strings or an object with .itos and .stoi")
    if hasattr(vocab, "stoi"):
        stoi = vocab.stoi
    else:  # as fastai's Numericalize: unknown words (and the xxfake padding entries) map to xxunk = 0
        stoi = {w: i for i, w in enumerate(itos) if w != "xxfake"}
    unk = stoi.get(UNK, 0)
    return itos, lambda t: stoi.get(t, unk)


def _filter(probs: torch.Tensor, top_k: int | None, top_p: float | None, min_p: float | None) -> torch.Tensor:
    """Zero the probabilities that top-k, nucleus (top-p) and min-p sampling leave out. probs (vocab,)."""
    if min_p is not None and bool((probs >= min_p).any()):
        probs = probs.masked_fill(probs < min_p, 0.0)
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        kth = probs.topk(min(top_k, probs.numel())).values[-1]
        probs = probs.masked_fill(probs < kth, 0.0)
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        sorted_p, order = probs.sort(descending=True)
        cum = sorted_p.cumsum(0) / sorted_p.sum()
        drop = cum - sorted_p / sorted_p.sum() >= top_p  # everything after the smallest set reaching top_p
        probs = probs.clone()
        probs[order[drop]] = 0.0
    return probs


def _sample_multinomial(probs: torch.Tensor, gen: torch.Generator) -> int:
    """One index drawn with probability proportional to `probs` (vocab,), as fastai's `predict` draws it."""
    return int(torch.multinomial(probs, 1, generator=gen))


@torch.no_grad()
def generate_tokens(model: LanguageModel, vocab, prompt_tokens: Sequence[str], n_words: int, temperature: float = 1.0,
                    no_unk: bool = True, seed: int | None = None, top_k: int | None = None,
                    top_p: float | None = None, min_p: float | None = None, fast: bool = True) -> list[str]:
    """Sample `n_words` tokens after `prompt_tokens` from a `LanguageModel` (the tokens only, prompt excluded).

    The book's loop with the hidden state carried: read the prompt once, then feed each sampled word alone.
    `fast=False`: each step is `model(x)` on one token and each word is drawn with `torch.multinomial`.
    `fast=True` (default): the same distribution through `generate_fast.py`: its one-token step (for a float
    model on the CPU; other models still take `model(x)`) and its inverse-CDF sampler.
    """
    if n_words < 0:
        raise ValueError(f"n_words must be >= 0, got {n_words}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = always the most likely word), got {temperature}")
    if not prompt_tokens:
        raise ValueError("the prompt has no tokens; start it with at least xxbos")
    itos, stoi = _itos_stoi(vocab)
    unk = stoi(UNK)
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu")
    if seed is not None:
        gen.manual_seed(seed)
    else:
        gen.seed()
    sample = sample_inverse_cdf if fast else _sample_multinomial
    was_training = model.training
    model.eval()
    model.reset()
    try:
        x = torch.tensor([[stoi(t) for t in prompt_tokens]], dtype=torch.long, device=device)  # (1, n)
        logits = model(x)[0][0, -1].float().cpu()  # (vocab,), the prediction after the prompt
        step = fast_step(model) if fast else None  # continues from the state the prompt left
        new: list[str] = []
        idx = -1  # the last sampled token, fed at the next step
        for i in range(n_words):
            if i > 0:  # the state carries the text so far: feed the last word alone
                if step:
                    logits = step(idx)
                else:  # x (1, 1)
                    logits = model(torch.tensor([[idx]], device=device))[0][0, -1].float().cpu()
            if logits.numel() != len(itos):
                raise ValueError(f"the model predicts {logits.numel()} tokens but the vocab has {len(itos)}")
            probs = logits.softmax(-1)
            if no_unk:
                probs[unk] = 0.0
            probs = _filter(probs, top_k, top_p, min_p)
            if temperature == 0:
                idx = int(probs.argmax())
            else:
                if temperature != 1.0:
                    probs = probs.pow(1 / temperature)  # = softmax(logits / temperature), renormalised by sample
                idx = sample(probs, gen)
            new.append(itos[idx])
    finally:
        model.reset()
        model.train(was_training)
    return new


def generate(model: LanguageModel, vocab, prompt: str, n_words: int, temperature: float = 1.0, no_unk: bool = True,
             seed: int | None = None, top_k: int | None = None, top_p: float | None = None,
             tokenize: Callable[[str], list[str]] | None = None, min_p: float | None = None, fast: bool = True,
             backwards: bool = False) -> str:
    """Continue `prompt` by `n_words` sampled words and return the whole text, readable (`learn.predict`).

    The prompt is tokenized by `tokenize` (default: the project's `awdlstm.tokenizers.corpus.tokenize`, which
    adds xxbos as fastai does); each word is sampled from softmax(logits / temperature), never xxunk
    when `no_unk`, optionally restricted by `top_k`, `top_p` (nucleus) or `min_p`; `seed` makes it repeatable.
    `fast`: see `generate_tokens` (the same distribution either way; a seed gives other words with each).
    `backwards`: the model was trained on reversed documents, so it writes what comes before the prompt: it
    reads the prompt last token first (xxbos, a document's start, is left out), and the text is returned in
    reading order, ending with the prompt.
    """
    if tokenize is None:
        try:
            from awdlstm.tokenizers.corpus import tokenize
        except ImportError as e:
            raise ImportError(f"generate needs a tokenize function: pass tokenize=... ({e})") from None
    tokens = list(tokenize(prompt))
    if backwards:
        tokens = [t for t in tokens if t != BOS][::-1]
    new = generate_tokens(model, vocab, tokens, n_words, temperature=temperature, no_unk=no_unk, seed=seed,
                          top_k=top_k, top_p=top_p, min_p=min_p, fast=fast)
    return decode_text((tokens + new)[::-1] if backwards else tokens + new)
