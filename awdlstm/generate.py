"""Text generation with a language model, chapter 10's `learn.predict(TEXT, N_WORDS, temperature=0.75)`.

fastai re-reads the whole text from a zero state for every new word; here the prompt is read once and
each sampled word is fed alone, the hidden state carrying the context (same distribution, linear time),
through `OneTokenStep`, the LSTM cell written out for one token.
`decode_text` turns the tokens back into readable text: it undoes xxmaj / xxup / xxrep / xxwrep (fastai's
`decode_spec_tokens`) and the spaces the tokenizer put around punctuation.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch
from torch import nn

from tokenizers.rules import BOS, EOS, PAD, TK_MAJ, TK_REP, TK_UP, TK_WREP, UNK
from tokenizers.vocab import as_itos

from .dropout import WeightDropout
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


def _halves(t: torch.Tensor | None) -> torch.Tensor | None:
    """A matrix (rows, cols) or bias (rows,) as two halves of its rows, (2, rows/2, ...) (one block if rows is odd)."""
    if t is None:
        return None
    k = 2 if t.shape[0] % 2 == 0 else 1
    return t.reshape(k, t.shape[0] // k, *t.shape[1:])


def _matvec(w: torch.Tensor, x: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """w @ x + b with w, b from `_halves`: both halves in one bmm, which torch spreads over two cores (a lone
    matrix-vector product runs on one; this step reads every weight once per word, so it is bound by memory)."""
    xs = x.reshape(1, 1, -1).expand(w.shape[0], 1, -1)  # as a row: (x^T w^T) takes torch's fast path
    wt = w.transpose(1, 2)
    y = torch.bmm(xs, wt) if b is None else torch.baddbmm(b.unsqueeze(1), xs, wt)
    return y.reshape(-1)


class OneTokenStep:
    """The language model in eval mode for one token at a time, written out: chapter 12's `LSTMCell`.

    Per layer, gates = W_ih @ x + W_hh @ h + (b_ih + b_hh), split into input, forget, cell and output
    gates (torch's order); c = f*c + i*g, h = o*tanh(c). Then the tied decoder. The dropouts are identities
    in eval mode. Same logits as `model(x)` on the carried state, to float rounding; about 1.8x faster per
    word on a 2-core CPU than torch's LSTM called with one token (see `_matvec`).
    """

    def __init__(self, model: LanguageModel):
        enc = model.encoder
        self.emb = enc.encoder.weight.detach()
        self.layers = []
        for rnn in enc.rnns:  # views of the weights (no copy): (4*n_out, n_in), (4*n_out, n_out), (4*n_out,)
            m = rnn.module
            self.layers.append((_halves(m.weight_ih_l0.detach()), _halves(m.weight_hh_l0.detach()),
                                _halves((m.bias_ih_l0 + m.bias_hh_l0).detach())))
        dec = model.decoder.decoder
        self.dec_w, self.dec_b = _halves(dec.weight.detach()), _halves(None if dec.bias is None else dec.bias.detach())

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """A float LanguageModel on the CPU made of this project's modules (not an int8 copy, not on a GPU)."""
        if not isinstance(model, LanguageModel) or not isinstance(model.decoder.decoder, nn.Linear):
            return False
        rnns = model.encoder.rnns
        return all(isinstance(r, WeightDropout) and type(r.module) is nn.LSTM and r.module.bias
                   and r.module.weight_ih_l0.dtype == torch.float32 and r.module.weight_ih_l0.device.type == "cpu"
                   for r in rnns)

    def __call__(self, idx: int, state: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Token id and the per-layer 1-D states [(h, c), ...] -> logits (vocab,); `state` gets the new states."""
        x = self.emb[idx]
        for k, (w_ih, w_hh, b) in enumerate(self.layers):
            h, c = state[k]
            i, f, g, o = (_matvec(w_ih, x, b) + _matvec(w_hh, h, None)).chunk(4)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            state[k] = (h, c)
            x = h
        return _matvec(self.dec_w, x, self.dec_b)


def _sample(probs: torch.Tensor, gen: torch.Generator) -> int:
    """One index drawn with probability proportional to `probs` (vocab,), by inverse CDF: one uniform number.
    (torch.multinomial draws one exponential per vocab entry, ~1.4 ms per word at 60,000 words.)"""
    cdf = probs.double().cumsum(0)
    u = torch.rand((), dtype=torch.float64, generator=gen) * cdf[-1]
    return min(int(torch.searchsorted(cdf, u, right=True)), len(cdf) - 1)


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


@torch.no_grad()
def generate_tokens(model: LanguageModel, vocab, prompt_tokens: Sequence[str], n_words: int, temperature: float = 1.0,
                    no_unk: bool = True, seed: int | None = None, top_k: int | None = None,
                    top_p: float | None = None, min_p: float | None = None) -> list[str]:
    """Sample `n_words` tokens after `prompt_tokens` from a `LanguageModel` (the tokens only, prompt excluded)."""
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
    was_training = model.training
    model.eval()
    model.reset()
    try:
        x = torch.tensor([[stoi(t) for t in prompt_tokens]], dtype=torch.long, device=device)  # (1, n)
        logits = model(x)[0][0, -1].float().cpu()  # (vocab,), the prediction after the prompt
        step = OneTokenStep(model) if OneTokenStep.supports(model) else None
        state = [(h.reshape(-1), c.reshape(-1)) for h, c in model.encoder.hidden] if step else None
        new: list[str] = []
        idx = -1  # the last sampled token, fed at the next step
        for i in range(n_words):
            if i > 0:  # the state carries the text so far: feed the last word alone
                if step:
                    logits = step(idx, state)
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
                    probs = probs.pow(1 / temperature)  # = softmax(logits / temperature), renormalised below
                idx = _sample(probs, gen)
            new.append(itos[idx])
    finally:
        model.reset()
        model.train(was_training)
    return new


def generate(model: LanguageModel, vocab, prompt: str, n_words: int, temperature: float = 1.0, no_unk: bool = True,
             seed: int | None = None, top_k: int | None = None, top_p: float | None = None,
             tokenize: Callable[[str], list[str]] | None = None, min_p: float | None = None) -> str:
    """Continue `prompt` by `n_words` sampled words and return the whole text, readable (`learn.predict`).

    The prompt is tokenized by `tokenize` (default: the project's `tokenizers.corpus.tokenize`, which
    adds xxbos as fastai does); each word is sampled from softmax(logits / temperature), never xxunk
    when `no_unk`, optionally restricted by `top_k`, `top_p` (nucleus) or `min_p`; `seed` makes it repeatable.
    """
    if tokenize is None:
        try:
            from tokenizers.corpus import tokenize
        except ImportError as e:
            raise ImportError(f"generate needs a tokenize function: pass tokenize=... ({e})") from None
    tokens = list(tokenize(prompt))
    new = generate_tokens(model, vocab, tokens, n_words, temperature=temperature, no_unk=no_unk, seed=seed,
                          top_k=top_k, top_p=top_p, min_p=min_p)
    return decode_text(tokens + new)
