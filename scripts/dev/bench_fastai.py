"""fastai 2.8's side of `scripts/bench.py`: the same measurements, on the same token ids, in fastai.

Run it in a virtualenv with fastai (never the project's), normally through bench.py, which writes the ids:

    python scripts/bench.py lm --fastai /path/to/fastai-venv/bin/python ...
    python scripts/bench.py clas --fastai /path/to/fastai-venv/bin/python ...

lm: fastai's LMDataLoader over the documents, get_language_model(AWD_LSTM) in an LMLearner (AR/TAR, Adam,
constant lr via `fit`), tokens/s of the batches after the warm-up (a callback times them and stops the fit).
clas: get_text_classifier(AWD_LSTM, awd_lstm_clas_config) in a TextLearner, `get_preds` on a SortedDL with
Pad_Chunk (fastai's classifier validation loader), reviews/s (its random weights are not ours: only the
speed is compared).
Prints one JSON object on its last line.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch


def docs_from(path: str) -> tuple[list[torch.Tensor], dict]:
    with np.load(path, allow_pickle=False) as z:
        ids, offsets = z["ids"].astype(np.int64), z["offsets"]
        meta = json.loads(str(z["meta"]))
    return [torch.from_numpy(ids[a:b]) for a, b in zip(offsets[:-1], offsets[1:])], meta


def bench_lm(args, docs, meta) -> dict:
    from fastai.callback.core import Callback, CancelFitException
    from fastai.data.core import DataLoaders
    from fastai.text.all import (
        AWD_LSTM,
        CrossEntropyLossFlat,
        LMDataLoader,
        LMLearner,
        awd_lstm_lm_config,
        awd_lstm_lm_split,
        get_language_model,
    )

    class Timer(Callback):
        def before_fit(self):
            self.times, self.cpu, self.losses = [], [], []

        def after_batch(self):
            self.losses.append(float(self.learn.loss))
            self.times.append(time.perf_counter())
            self.cpu.append(time.process_time())
            if len(self.times) >= args.warmup + args.steps + 1:
                raise CancelFitException()

    torch.manual_seed(0)
    dl = LMDataLoader(docs, bs=args.bs, seq_len=args.seq_len, shuffle=True)
    dls = DataLoaders(dl, LMDataLoader(docs[:50], bs=args.bs, seq_len=args.seq_len))
    cfg = dict(awd_lstm_lm_config, emb_sz=args.emb, n_hid=args.hid, n_layers=args.layers)
    model = get_language_model(AWD_LSTM, meta["vocab"], config=cfg, drop_mult=args.drop_mult)
    timer = Timer()
    learn = LMLearner(dls, model, loss_func=CrossEntropyLossFlat(), splitter=awd_lstm_lm_split, cbs=[timer])
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, args.lr)
    t, c = timer.times, timer.cpu  # t[w] = end of the last warm-up batch
    secs = t[args.warmup + args.steps] - t[args.warmup]
    losses = timer.losses[: args.warmup + args.steps]  # as many batches as bench.py lm reports
    return {"tokens_per_s": round(args.steps * args.bs * args.seq_len / secs, 2),
            "ms_per_step": round(1e3 * secs / args.steps, 1),
            "tokens_per_cpu_s": round(args.steps * args.bs * args.seq_len / (c[args.warmup + args.steps] - c[args.warmup]), 2),
            "losses": [round(v, 4) for v in losses],
            "train_ppl_last10": round(float(np.exp(np.mean(losses[-10:]))), 2)}


def bench_clas(args, docs, meta) -> dict:
    from fastai.data.core import DataLoaders
    from fastai.text.all import (
        AWD_LSTM,
        CrossEntropyLossFlat,
        Pad_Chunk,
        SortedDL,
        TensorText,
        TextLearner,
        awd_lstm_clas_config,
        awd_lstm_clas_split,
        get_text_classifier,
    )
    from fastai.torch_core import TensorCategory

    items = [(TensorText(d), TensorCategory(0)) for d in docs]
    dl = SortedDL(items, before_batch=Pad_Chunk(seq_len=72), bs=args.bs, shuffle=False)
    torch.manual_seed(0)
    cfg = dict(awd_lstm_clas_config, emb_sz=args.emb, n_hid=args.hid, n_layers=args.layers)
    model = get_text_classifier(AWD_LSTM, meta["vocab"], 2, seq_len=72, config=cfg, max_len=72 * 20)
    learn = TextLearner(DataLoaders(dl, dl), model, loss_func=CrossEntropyLossFlat(), splitter=awd_lstm_clas_split)
    with learn.no_bar(), learn.no_logging():
        t0, c0 = time.perf_counter(), time.process_time()
        learn.get_preds(dl=dl)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"reviews_per_s": round(len(docs) / secs, 2), "reviews_per_cpu_s": round(len(docs) / cpu, 2),
            "seconds": round(secs, 3)}


def bench_generate(args, docs, meta) -> dict:
    import pandas as pd
    from fastai.text.all import AWD_LSTM, TextDataLoaders, awd_lstm_lm_config, language_model_learner

    itos = meta["itos"]
    df = pd.DataFrame({"text": ["a tiny corpus, only here to give the learner its tokenizer"] * 8})
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, text_vocab=itos, bs=2, seq_len=8, valid_pct=0.25)
    torch.manual_seed(0)
    cfg = dict(awd_lstm_lm_config, emb_sz=args.emb, n_hid=args.hid, n_layers=args.layers)
    learn = language_model_learner(dls, AWD_LSTM, config=cfg, pretrained=False)
    with learn.no_bar(), learn.no_logging():
        learn.predict(args.prompt, 2, temperature=0.75)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.reps):
            learn.predict(args.prompt, args.n_words, temperature=0.75)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"vocab": len(learn.dls.vocab), "words_per_s": round(args.n_words * args.reps / secs, 2),
            "words_per_cpu_s": round(args.n_words * args.reps / cpu, 2), "seconds_per_text": round(secs / args.reps, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", choices=["lm", "clas", "generate"])
    ap.add_argument("--data", required=True, help=".npz with ids, offsets and meta (written by bench.py)")
    ap.add_argument("--threads", type=int, default=0)
    for name, kind, default in (("emb", int, 128), ("hid", int, 512), ("layers", int, 3), ("bs", int, 64),
                                ("seq-len", int, 72), ("steps", int, 30), ("warmup", int, 3), ("lr", float, 1e-3),
                                ("drop-mult", float, 1.0), ("n-words", int, 40),
                                ("reps", int, 3), ("prompt", str, "I liked this movie because")):
        ap.add_argument(f"--{name}", type=kind, default=default)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    docs, meta = docs_from(args.data)
    import fastai
    res = {"fastai": fastai.__version__, "threads": torch.get_num_threads(), "load_avg": round(os.getloadavg()[0], 2),
           **{"lm": bench_lm, "clas": bench_clas, "generate": bench_generate}[args.bench](args, docs, meta)}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
