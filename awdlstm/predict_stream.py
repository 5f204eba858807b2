"""Prediction over an input of any length (chapter 10's `learn.predict` / `get_preds`, one block at a time):
the texts are read, tokenized and classified `block` at a time, so memory stays that of one block however long
the input is, and every block's output is written (whole lines, then flushed) as soon as it is ready.

    models = [load_classifier("runs/clas-fwd")]
    with open("reviews.txt", encoding="utf-8") as f:       # one text per line; a million lines is fine
        write_predictions(models, read_lines(f), sys.stdout)

Inside a block the texts are batched by length (the ClasLoader's sorted order, little padding) and put back
in input order (`predict_ids`), so the output is line for line the input. A block's lines are written with
Ctrl-C and SIGTERM held back (they stop the run once the block is out): an interrupted run leaves complete
lines only, the last block's lines either all there or none of them (SIGKILL cannot be held back; it can only
land between two writes, or inside the kernel's copy of one block, which a run spends microseconds in).
"""
from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterable, Iterator
from typing import TextIO

import numpy as np
import torch
from tqdm.auto import tqdm

from awdlstm.bow import BowModel
from awdlstm.data.stream_sources import chunks as blocks  # texts in lists of `block`, read as needed
from awdlstm.precision import resolve_precision
from awdlstm.predict import Classifier, predict_ids
from awdlstm.quantize import quantize_int8
from awdlstm.tokenizers.corpus import sigterm_interrupts, tokenize_corpus

BLOCK = 4096  # texts per block: a few MiB of texts and ids, a second or two of work for a small model


def read_lines(f: Iterable[str] | Iterable[bytes], where: str = "stdin") -> Iterator[str]:
    """The texts of a stream (text or binary), one per line (its newline removed), blank lines skipped; read
    lazily. Binary lines are UTF-8 (a byte-order mark at the start is dropped); one that is not is an error
    naming `where` and the line."""
    for n, line in enumerate(f, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{where}: line {n} is not UTF-8 text ({e.reason} at byte {e.start})") from None
        if line.strip():
            yield line.rstrip("\r\n")


def predict_blocks(models: list[Classifier | BowModel], texts: Iterable[str], block: int = BLOCK, bs: int = 64,
                   device: torch.device | str = "cpu", precision: str = "fp32", n_workers: int = 1
                   ) -> Iterator[tuple[list[str], list[str], torch.Tensor]]:
    """(texts, predicted labels, mean probabilities (len(texts), n_class)) for each block of `texts`, in order.

    Equal to `predict_texts(models, texts)` block by block: tokenized once per block (`n_workers` processes),
    cut to each model's `max_tokens`, the models' probabilities averaged with equal weights (the ensemble; a
    bag-of-words member, `awdlstm.bow.BowModel`, reads the same tokens). `precision` 'int8' quantizes each
    classifier once, 'bf16' runs them under autocast (see predict_texts); the bag-of-words member is fp32."""
    if not models:
        raise ValueError("predict_blocks needs at least one classifier")
    if precision not in ("fp32", "bf16", "int8"):
        raise ValueError(f"precision must be fp32, bf16 or int8, got {precision!r}")
    if precision == "int8" and torch.device(device).type != "cpu":
        raise ValueError(f"--precision int8 runs on the CPU only (got --device {torch.device(device).type})")
    for m in models:
        if m.labels.itos != models[0].labels.itos:
            raise ValueError(f"{m.run_dir} predicts the labels {m.labels.itos}, the first model "
                             f"{models[0].labels.itos}")
    autocast = resolve_precision("bf16" if precision == "bf16" else "fp32", torch.device(device)).autocast
    nets = [m if isinstance(m, BowModel) else quantize_int8(m.model) if precision == "int8" else m.model
            for m in models]
    itos = models[0].labels.itos
    for chunk in blocks(texts, block):
        corpus = tokenize_corpus(chunk, n_workers=n_workers, progress=False)
        probs = []
        for m, net in zip(models, nets, strict=True):
            cut = corpus.subset(np.arange(len(chunk)), m.max_tokens)
            if isinstance(m, BowModel):
                probs.append(m.predict_corpus(cut))
                continue
            with autocast():
                probs.append(predict_ids(net, cut.numericalize(m.vocab), bs=bs, backwards=m.backwards,
                                         device=device))
        mean = torch.stack(probs).mean(0)  # (len(chunk), n_class)
        yield chunk, [itos[i] for i in mean.argmax(-1).tolist()], mean


def format_line(text: str, label: str, probs: list[float], itos: list[str], as_json: bool = False) -> str:
    """One output line (newline included): `label<TAB>p(class)...<TAB>the text's first 60 characters`, or
    with `as_json` the JSON object {"label", "probs": {class: p}, "text"}."""
    if as_json:
        return json.dumps({"label": label, "probs": dict(zip(itos, probs, strict=True)), "text": text}) + "\n"
    return "\t".join([label, *(f"{v:.4f}" for v in probs), " ".join(text.split())[:60]]) + "\n"


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM inside the block (delivered, with their usual effect, as it ends)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def write_predictions(models: list[Classifier | BowModel], texts: Iterable[str], out: TextIO, as_json: bool = False,
                      block: int = BLOCK, progress: bool | None = None, **kwargs) -> int:
    """Classify `texts` block by block and write one line per text to `out` (see `format_line`), each block's
    lines in one write, flushed, with Ctrl-C and SIGTERM held back meanwhile; SIGTERM stops the run as Ctrl-C
    does (KeyboardInterrupt), wherever it lands. A tqdm bar on stderr counts the
    texts (`progress` None: when stderr is a terminal). Returns the number of texts; none is an error.
    `kwargs` go to `predict_blocks` (bs, device, precision, n_workers)."""
    itos = models[0].labels.itos if models else []
    n = 0
    with (sigterm_interrupts("predicting; the lines written are complete"),
          tqdm(desc="predicting", unit=" texts", disable=None if progress is None else not progress) as bar):
        for chunk, labels, probs in predict_blocks(models, texts, block, **kwargs):
            lines = "".join(format_line(t, lab, p, itos, as_json)
                            for t, lab, p in zip(chunk, labels, probs.tolist(), strict=True))
            with signals_held():
                out.write(lines)
                out.flush()
            n += len(chunk)
            bar.update(len(chunk))
    if n == 0:
        raise ValueError("no texts (give them as arguments, with --files or --lines, or on stdin)")
    return n
