"""`show_batch`: a batch as readable text, like `dls.show_batch()` in chapter 10.

For a language-model batch it shows each row's text and the same text shifted by one token (the targets);
for a classifier batch each document's text (padding removed) and its label.
"""
from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

import torch

from ..tokenizers.vocab import as_itos


def decode(ids: Sequence[int] | torch.Tensor, vocab, pad_idx: int | None = None, trunc_at: int | None = None) -> str:
    """Token ids -> the tokens joined by spaces (padding dropped when `pad_idx` is given; at most `trunc_at` tokens)."""
    itos = as_itos(vocab)
    ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
    toks = [itos[i] if 0 <= i < len(itos) else f"<{i}?>" for i in ids if pad_idx is None or i != pad_idx]
    return " ".join(toks[:trunc_at] if trunc_at is not None else toks)


def format_table(header: list[str], rows: list[list[str]], width: int | None = None) -> str:
    """Rows of text as a table whose cells wrap to fit `width` characters (the terminal's width by default)."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    idx_w = len(str(len(rows)))
    natural = [max([len(h)] + [len(r[j]) for r in rows]) for j, h in enumerate(header)]
    room = max(12 * len(header), width - idx_w - 3 * len(header))
    share = room // len(header)
    short = sum(n for n in natural if n <= share)  # narrow columns (labels) keep their width
    n_long = sum(n > share for n in natural)
    col_ws = [n if n <= share else max(12, (room - short) // n_long) for n in natural]
    lines = [" " * idx_w + "".join(f" | {h:<{w}}" for h, w in zip(header, col_ws, strict=True)).rstrip()]
    lines.append("-" * min(width, idx_w + sum(w + 3 for w in col_ws)))
    for i, row in enumerate(rows):
        cells = [textwrap.wrap(c, w) or [""] for c, w in zip(row, col_ws, strict=True)]
        for k in range(max(len(c) for c in cells)):
            first = str(i) if k == 0 else ""
            lines.append(f"{first:>{idx_w}}" + "".join(f" | {(c[k] if k < len(c) else ''):<{w}}"
                                                      for c, w in zip(cells, col_ws, strict=True)).rstrip())
    return "\n".join(lines)


def show_batch(batch: tuple[torch.Tensor, torch.Tensor | None], vocab, label_vocab=None, max_n: int = 9,
               trunc_at: int = 150, pad_idx: int = 1, width: int | None = None, file: TextIO | None = None) -> str:
    """Print (and return) up to `max_n` rows of a batch, decoded with `vocab` (a Vocab or a list of strings).

    LM batch, y of shape (bs, seq_len): columns `text` and `text_` (the target, shifted by one).
    Classifier batch, y of shape (bs,) or None: columns `text` (padding removed) and `category`, decoded with
    `label_vocab` (`.itos` or a list) when given. Texts are cut after `trunc_at` tokens.
    """
    x, y = batch
    n = min(max_n, x.shape[0])
    if y is not None and y.dim() == 2:  # language model
        header = ["text", "text_"]
        rows = [[decode(x[i], vocab, None, trunc_at), decode(y[i], vocab, None, trunc_at)] for i in range(n)]
    else:
        header = ["text", "category"]
        labels = None if label_vocab is None else as_itos(label_vocab)
        rows = [[decode(x[i], vocab, pad_idx, trunc_at),
                 "" if y is None else (labels[int(y[i])] if labels else str(int(y[i])))] for i in range(n)]
    out = format_table(header, rows, width)
    print(out, file=file or sys.stdout)
    return out
