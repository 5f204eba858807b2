"""Benchmark (not a test): a corpus bigger than memory, streamed (issue #31). Time, tokens/s and the peak RSS of
every process while building the language model's data from a CSV and starting to train.

    python scripts/dev/bench_corpus.py --docs 100000 --compare      # + today's in-memory path
    python scripts/dev/bench_corpus.py --docs 1000000 --workers 2

Makes `--docs` documents by cycling the embedded reviews (IMDb and Rotten Tomatoes) into a CSV in `--dir`,
then, in a fresh child process: `lm_texts(--stream)` (read in blocks, tokenized by the workers, merged, mapped),
finetune_lm's data step (vocab of 60,000 from all documents, ids under it written and mapped, a 10% split as
indices) and 200 batches of FastLMLoader (bs 128, seq_len 80) read from the map. Reported: the wall time of
each step, tokens/s, and peak RSS of the main process (ru_maxrss, and its anonymous memory sampled every 0.1 s:
the map's file pages, which the kernel can drop, are the difference) and of the largest worker; then a second
run on the same files (reused: "rebuilt from files"). The first run also times the same batches from an
in-memory copy of the ids. `--compare` also runs the in-memory path of today (read_csv, tokenize_corpus,
subset, numericalize, select_docs) in its own child. Prints one JSON line per run.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_csv(path: Path, n_docs: int) -> None:
    """`n_docs` rows (text, label) cycling the embedded corpus."""
    from awdlstm.data.sources import read_movie_reviews
    if path.exists():
        return
    rows = [(r.text, r.label) for r in read_movie_reviews()]
    tmp = path.with_suffix(".part")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n_docs):
            w.writerow(rows[i % len(rows)])
    os.replace(tmp, path)


class AnonPeak:
    """Peaks sampled in a thread every 0.1 s: this process's RssAnon, and the peak RSS (VmHWM) of the largest of
    its descendants (the tokenizing workers, children of the fork server, which `RUSAGE_CHILDREN` never sees:
    it counts only children that were waited for)."""

    def __init__(self):
        self.peak, self.worker_peak, self._stop = 0, 0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_kib(os.getpid(), "RssAnon:"))
            for pid in _descendants(os.getpid()):
                self.worker_peak = max(self.worker_peak, _status_kib(pid, "VmHWM:"))
            time.sleep(0.1)

    def stop(self) -> float:
        self._stop.set()
        return self.peak / 1024

    def workers_mib(self) -> float:
        return self.worker_peak / 1024


def _status_kib(pid: int, field: str) -> int:
    """A KiB field of /proc/PID/status (0 if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith(field)), 0)
    except OSError:
        return 0


def _descendants(root: int) -> list[int]:
    """The processes below `root` (children, their children, ...), from /proc."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        kids = [c for c, p in parent.items() if p == todo.pop()]
        out += kids
        todo += kids
    return out


def mib_self() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_stream(csv_path: str, cache: str, workers: int, batches_from_memory: bool) -> dict:
    """Build (or reuse) the streamed corpus, the LM data, 200 batches from the map."""
    import numpy as np
    import torch

    from awdlstm.data.lm_loader_fast import FastLMLoader
    from awdlstm.data.splits import random_split
    from awdlstm.data.text_source import TextSource
    from awdlstm.shared_corpus import lm_texts, mapped_lm_data, n_tokens
    torch.set_num_threads(1)
    anon = AnonPeak()
    t0 = time.time()
    from awdlstm import shared_corpus
    real = shared_corpus.shared_corpus
    shared_corpus.shared_corpus = lambda s, c, progress=True: real(s, c, n_workers=workers, progress=progress)
    corpus = lm_texts(TextSource("csv", csv_path), True, cache, progress=sys.stderr.isatty())
    t_build = time.time() - t0
    rng = np.random.default_rng(42)
    docs = np.arange(len(corpus))
    train_idx, valid_idx = random_split(len(docs), 0.1, rng)
    vocab, train, valid = mapped_lm_data(corpus, docs, train_idx, valid_idx, 3, 60000)
    t_data = time.time() - t0
    out = {"docs": len(corpus), "tokens": int(corpus.manifest["n_tokens"]), "types": len(corpus.types),
           "vocab": len(vocab), "build_s": round(t_build, 1), "data_s": round(t_data, 1)}

    def batches(data, idxs) -> float:
        dl = FastLMLoader(data, bs=128, seq_len=80, shuffle=True, seed=0, idxs=idxs)
        t = time.time()
        n = sum(x.numel() for _, (x, _) in zip(range(200), dl))
        return n / (time.time() - t)
    out["batch_tok_s_map"] = round(batches(train[0], train[1]))
    out["start_s"] = round(time.time() - t0, 1)
    out["tok_s"] = round(out["tokens"] / t_build)
    out["train_tokens"] = n_tokens(train)
    out["rss_main_mib"], out["anon_main_mib"] = round(mib_self()), round(anon.stop())
    out["rss_worker_mib"] = round(anon.workers_mib())
    if batches_from_memory:  # the same batches from an in-memory copy of the ids (after the peaks were taken);
        ids = np.array(train[0][0])  # map and memory in turn, 3 times each, the best of each (a busy machine)
        mem = (ids, np.asarray(train[0][1]))
        runs = [(batches(train[0], train[1]), batches(mem, train[1])) for _ in range(3)]
        out["batch_tok_s_map"] = round(max(r[0] for r in runs))
        out["batch_tok_s_memory"] = round(max(r[1] for r in runs))
    return out


def child_memory(csv_path: str, workers: int) -> dict:
    """Today's in-memory path, as finetune_lm builds it."""
    import numpy as np

    from awdlstm.data.sources import read_csv
    from awdlstm.data.splits import random_split
    from awdlstm.tokenizers.corpus import select_docs, tokenize_corpus
    from awdlstm.tokenizers.vocab import Vocab
    anon = AnonPeak()
    t0 = time.time()
    texts = read_csv(csv_path, label_col=None)
    corpus = tokenize_corpus(texts.texts, n_workers=workers, progress=False)
    del texts
    t_build = time.time() - t0
    train_idx, valid_idx = random_split(len(corpus), 0.1, np.random.default_rng(42))
    lm = corpus.subset(np.arange(len(corpus)))
    vocab = Vocab.from_counts(lm.counts(), 3, 60000)
    ids, offsets = lm.numericalize(vocab)
    select_docs(ids, offsets, train_idx), select_docs(ids, offsets, valid_idx)
    return {"path": "in-memory", "docs": len(corpus), "tokens": len(corpus.ids), "vocab": len(vocab),
            "build_s": round(t_build, 1), "data_s": round(time.time() - t0, 1),
            "tok_s": round(len(corpus.ids) / t_build), "rss_main_mib": round(mib_self()),
            "anon_main_mib": round(anon.stop()), "rss_worker_mib": round(anon.workers_mib())}


def run_child(*args: str) -> dict:
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)  # yours first
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", default="/tmp/bench_corpus", help="where the CSV and the corpus go")
    ap.add_argument("--compare", action="store_true", help="also the in-memory path, and batches from memory")
    ap.add_argument("--keep", action="store_true", help="keep the CSV and the corpus folder")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        out = child_stream(rest[0], rest[1], int(rest[2]), rest[3] == "1") if kind == "stream" else \
            child_memory(rest[0], int(rest[1]))
        print(json.dumps(out))
        return
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, cache = folder / f"reviews-{args.docs}.csv", folder / f"cache-{args.docs}"
    t = time.time()
    make_csv(csv_path, args.docs)
    load = os.getloadavg()[0]
    print(json.dumps({"csv": str(csv_path), "csv_mib": round(csv_path.stat().st_size / 2**20), "made_s":
                      round(time.time() - t, 1), "load_1min": load}), flush=True)
    first = run_child("stream", str(csv_path), str(cache), str(args.workers), "1")
    print(json.dumps({"path": "streamed, built", **first, "load_1min": os.getloadavg()[0]}), flush=True)
    again = run_child("stream", str(csv_path), str(cache), str(args.workers), "0")
    print(json.dumps({"path": "streamed, reused", **again, "load_1min": os.getloadavg()[0]}), flush=True)
    if args.compare:
        print(json.dumps({**run_child("memory", str(csv_path), str(args.workers)), "load_1min": os.getloadavg()[0]}),
              flush=True)
    if not args.keep:
        import shutil
        shutil.rmtree(cache, ignore_errors=True)
        csv_path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
