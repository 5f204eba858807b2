"""Checkpoints: atomic writes, weights_only loading, RNG round trip, bit-exact resume, Ctrl-C."""
import math
import random

import numpy as np
import pytest
import torch
from tiny_models import SeededBatches, ShuffledBatches, TinyLM, lm_batches

from awdlstm.checkpoint import save_torch
from awdlstm.train import FitInterrupted, Learner, TrainConfig
from awdlstm.train_checkpoint import load_checkpoint, rng_state, set_rng_state, set_seed


def _learner(run_dir, train_dl):
    set_seed(0)
    return Learner(TinyLM(p=0.3), train_dl, lm_batches(2, seed=1), run_dir,
                   cfg=TrainConfig(progress=False, precision="fp32"))


@pytest.mark.parametrize("loader", [ShuffledBatches, SeededBatches])
def test_interrupted_fit_resumes_bit_exact(tmp_path, loader):
    data = lm_batches(5, sl=7)  # 7: the rule's period is 8, so every batch differs (order matters)
    assert not torch.equal(data[0][0], data[1][0])
    full = _learner(tmp_path / "full", loader(data))
    full.fit_one_cycle(3, 1e-2)

    cut = _learner(tmp_path / "cut", loader(data, interrupt_at=(1, 2)))  # Ctrl-C in epoch 1
    with pytest.raises(FitInterrupted, match="resume"):
        cut.fit_one_cycle(3, 1e-2)
    assert (tmp_path / "cut" / "interrupted.pt").exists()
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["fit"]["epoch"] == 1

    torch.manual_seed(123)  # a fresh process: other weights, other RNG state ...
    resumed = Learner(TinyLM(p=0.3), loader(data), lm_batches(2, seed=1), tmp_path / "cut",
                      cfg=TrainConfig(progress=False, precision="fp32"))
    resumed.resume(tmp_path / "cut" / "last.pt")
    resumed.fit_one_cycle(3, 1e-2)  # the run's call again: it goes on from epoch 2
    resumed.check_resumed()
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k  # ... and yet the same weights, bit for bit
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    assert [r["valid_loss"] for r in resumed.history] == [r["valid_loss"] for r in full.history]
    for a, b in zip(full.opt.params(), resumed.opt.params(), strict=True):
        sa, sb = full.opt.state[id(a)], resumed.opt.state[id(b)]
        assert sa["step"] == sb["step"] == 15 and torch.equal(sa["sqr_avg"], sb["sqr_avg"])


def test_resume_needs_epoch_checkpoint(tmp_path):
    learn = _learner(tmp_path, lm_batches(2))
    path = learn.save("manual.pt")
    assert path == tmp_path / "manual.pt"
    with pytest.raises(ValueError, match="nothing to resume"):
        learn.resume(path)


def test_save_load_round_trip_frozen_state(tmp_path):
    learn = _learner(tmp_path, lm_batches(3))
    learn.freeze()
    learn.fit_one_cycle(1, 1e-2)
    other = _learner(tmp_path / "o", lm_batches(3))
    fit = other.load(tmp_path / "last.pt")
    assert fit == {"fit": 1, "n_epoch": 1, "lr_max": [1e-2, 1e-2], "moms": [0.8, 0.7, 0.8], "epoch": 1}
    assert other.opt.frozen_idx == 1 and not other.model.rnn.weight_ih_l0.requires_grad
    assert other.opt.hypers == learn.opt.hypers and other.history == learn.history
    for a, b in zip(learn.model.parameters(), other.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_checkpoint_is_weights_only_and_atomic(tmp_path):
    learn = _learner(tmp_path, lm_batches(2))
    path = learn.save(tmp_path / "sub" / "c.pt")
    ckpt = torch.load(path, weights_only=True)  # no pickled objects
    assert set(ckpt) >= {"model", "opt", "fit", "rng", "history"}
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]  # no temp file left

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("boom")

    save_torch({"model": {}}, tmp_path / "keep.pt")
    with pytest.raises(RuntimeError, match="boom"):
        save_torch({"model": Unsaveable()}, tmp_path / "keep.pt")
    assert load_checkpoint(tmp_path / "keep.pt") == {"model": {}}  # the old file survives a failed save
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an awdlstm checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_rng_state_round_trip():
    set_seed(5)
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(state)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    set_seed(5)
    assert random.random() == a[0] and not math.isnan(a[1])


def test_seeded_cpu_runs_repeat(tmp_path):
    runs = []
    for i in range(2):
        learn = _learner(tmp_path / str(i), ShuffledBatches(lm_batches(3)))
        learn.fit_one_cycle(1, 1e-2)
        runs.append([p.detach().clone() for p in learn.model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))
