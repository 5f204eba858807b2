"""Data parallelism (awdlstm/distributed.py): each rank's share of the batches, and 2 ranks under torchrun
(gloo on CPU) training like 1 process: same batches between them, identical weights on every rank, and
for a dropout-free language model the same weights and losses as one process with the whole batch."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from awdlstm import distributed as D
from awdlstm.data import ClasLoader, LMLoader
from awdlstm.precision import cpu_has_fast_bf16

ROOT = Path(__file__).resolve().parents[1]
DOCS = [list(range(2 + i, 2 + i + n)) for i, n in enumerate([7, 3, 12, 5, 9, 4, 11, 6, 8, 2])]


def test_lm_loader_rows_are_shared_between_ranks():
    one = LMLoader(DOCS, bs=4, seq_len=3, shuffle=True, seed=5)
    shares = [LMLoader(DOCS, bs=4, seq_len=3, shuffle=True, seed=5, rank=r, world_size=2) for r in (0, 1)]
    for epoch in (0, 1):
        for dl in [one, *shares]:
            dl.set_epoch(epoch)
        for (x, y), (x0, y0), (x1, y1) in zip(one, *shares, strict=True):
            assert x0.shape == (2, x.shape[1])
            assert torch.equal(x[0::2], x0) and torch.equal(x[1::2], x1)  # rows rank::2: every token once
            assert torch.equal(y[0::2], y0) and torch.equal(y[1::2], y1)
    assert len(shares[0]) == len(shares[1]) == len(one)
    with pytest.raises(ValueError, match=r"batch size \(4\) must be a multiple of the number of processes \(3\)"):
        LMLoader(DOCS, bs=4, seq_len=3, rank=0, world_size=3)
    with pytest.raises(ValueError, match="rank must be in"):
        LMLoader(DOCS, bs=4, seq_len=3, rank=2, world_size=2)


def test_clas_loader_rows_are_shared_between_ranks():
    labels = list(range(len(DOCS)))  # y names the document
    one = ClasLoader(DOCS, labels, bs=4, seq_len=4, shuffle=True, seed=3)
    shares = [ClasLoader(DOCS, labels, bs=4, seq_len=4, shuffle=True, seed=3, rank=r, world_size=2) for r in (0, 1)]
    seen = []
    for (_, y), (x0, y0), (x1, y1) in zip(one, *shares, strict=True):
        assert torch.equal(y[0::2], y0) and torch.equal(y[1::2], y1)
        for xs, ys in ((x0, y0), (x1, y1)):
            assert xs.shape[1] == max(len(DOCS[d]) for d in ys.tolist())  # padded to the share's own longest
            for row, d in zip(xs, ys.tolist(), strict=True):
                assert row[row != 1].tolist() == DOCS[d]
        seen += y0.tolist() + y1.tolist()
    assert sorted(seen) == sorted(one.order.tolist()) and len(set(seen)) == 8  # drop_last: 2 full batches
    # validation: 10 documents, bs 4 -> the last batch has 2 rows, so ranks 2 and 3 of 4 get one batch less
    valid = [ClasLoader(DOCS, labels, bs=4, seq_len=4, rank=r, world_size=4) for r in range(4)]
    assert [len(v) for v in valid] == [len(list(v)) for v in valid] == [3, 3, 2, 2]
    assert sorted(int(y) for v in valid for _, ys in v for y in ys) == labels
    with pytest.raises(ValueError, match="every rank"):
        valid[0].restore_order(torch.zeros(10))


def test_single_process_helpers(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert (D.world_size(), D.rank(), D.is_main()) == (1, 0, True)
    assert D.setup(torch.device("cpu")) == torch.device("cpu")
    t = torch.tensor([1.0, 2.0])
    assert D.all_reduce_sum(t) is t and D.broadcast_str("runs/x") == "runs/x"
    D.barrier()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(RuntimeError, match="launch with torchrun"):
        D.setup(torch.device("cpu"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """tests/dist_worker.py as 2 ranks under torchrun (subprocess, then finetune_lm.py) and as one process (here)."""
    two, one = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("one")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(ROOT / "tests" / "dist_worker.py"), str(two), "--scripts"],
                          cwd=two, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    spec = importlib.util.spec_from_file_location("dist_worker", ROOT / "tests" / "dist_worker.py")
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    worker.main(one)
    load = lambda p: torch.load(p, weights_only=True)  # noqa: E731
    return {"stdout": proc.stdout, "r0": load(two / "rank0.pt"), "r1": load(two / "rank1.pt"),
            "one": load(one / "rank0.pt"), "two_dir": two}


def test_two_ranks_keep_identical_weights_and_only_rank0_prints(runs):
    r0, r1 = runs["r0"], runs["r1"]
    assert r0["world_size"] == r1["world_size"] == 2
    for key in ("lm", "clas"):
        assert r0[key].keys() == r1[key].keys()
        for name, w in r0[key].items():
            assert torch.equal(w, r1[key][name]), (key, name)
    assert runs["stdout"].count("train_loss") == 4 + 2  # 4 fits + finetune_lm's 2, each table printed once
    assert not (runs["two_dir"] / "rank2.pt").exists()
    assert r0["auto"] == r1["auto"]  # one precision for all ranks: their timings' mean decides
    assert (r0["auto"][1] is None) == (not cpu_has_fast_bf16())


def test_finetune_lm_script_under_torchrun(runs):
    """One run folder (rank 0's name, broadcast), written once; the log holds rank 0's output only."""
    (run,) = (runs["two_dir"] / "runs").iterdir()
    assert run.name.startswith("lm-")
    names = {p.name for p in run.iterdir()}
    assert {"lm.pt", "encoder.pt", "vocab.json", "config.json", "history.csv", "log.txt"} <= names
    assert not (run / "last.pt").exists()
    log = (run / "log.txt").read_text()
    assert log.count("train_loss") == 2 and log.count("run folder:") == 1 and log.count("saved ") == 1
    assert runs["stdout"].count(f"saved runs/{run.name}/lm.pt") == 1
    assert json.loads((run / "config.json").read_text())["results"]["n_docs"] == 20


def test_ranks_see_disjoint_shares_of_the_one_process_batches(runs):
    r0, r1, one = runs["r0"], runs["r1"], runs["one"]
    assert len(r0["lm_seen"]) == len(r1["lm_seen"]) == len(one["lm_seen"])  # 3 epochs of batches
    for (x0, y0), (x1, y1), (x, y) in zip(r0["lm_seen"], r1["lm_seen"], one["lm_seen"], strict=True):
        assert torch.equal(x[0::2], x0) and torch.equal(x[1::2], x1)
        assert torch.equal(y[0::2], y0) and torch.equal(y[1::2], y1)
    n_batches = 24 // 4  # classifier: 24 documents, bs 4, two epochs
    epochs = [[], []]
    shares = zip(r0["clas_seen"], r1["clas_seen"], one["clas_seen"], strict=True)
    for i, ((_, y0), (_, y1), (_, y)) in enumerate(shares):
        assert not set(y0.tolist()) & set(y1.tolist()) and sorted(y0.tolist() + y1.tolist()) == sorted(y.tolist())
        epochs[i // n_batches] += y0.tolist() + y1.tolist()
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(24))  # every document once per epoch


def test_two_ranks_train_the_lm_like_one_process(runs):
    """No dropout, equal shares: the mean of the ranks' gradients is the whole batch's gradient."""
    r0, one = runs["r0"], runs["one"]
    for name, w in one["lm"].items():
        torch.testing.assert_close(r0["lm"][name], w, atol=2e-5, rtol=1e-4)
    for a, b in zip(r0["lm_history"], one["lm_history"], strict=True):
        for k in ("train_loss", "valid_loss", "accuracy", "perplexity"):
            assert np.isclose(a[k], b[k], rtol=1e-5, atol=1e-6), (k, a[k], b[k])
