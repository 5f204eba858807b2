"""One training run for tests/test_distributed.py, as one process or as each rank under torchrun:

    python tests/dist_worker.py OUT                                         # the single-process reference
    torchrun --standalone --nproc_per_node 2 tests/dist_worker.py OUT --scripts   # 2 ranks, gloo on CPU

A tiny language model without dropout (frozen fit, then unfrozen fit: DDP is rebuilt in between) and a tiny
classifier; every rank saves to OUT/rank<r>.pt its final weights, the batches it was given and the history.
With --scripts the same processes then run scripts/finetune_lm.py (tiny preset, the sample corpus) into
./runs, as `torchrun ... scripts/finetune_lm.py` would, without paying for another launch. (Only one script:
it leaves the process group at its end, and a group is not re-created within the same torchrun launch.)
"""
import sys
from pathlib import Path

import numpy as np
import torch

from awdlstm import LanguageModel, TextClassifier, clas_config, lm_config
from awdlstm import distributed as D
from awdlstm.data import ClasLoader, LMLoader
from awdlstm.train import Learner, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """A loader that remembers every batch it yields (the data this rank saw)."""

    def __init__(self, dl):
        self.dl, self.seen = dl, []

    def __len__(self):
        return len(self.dl)

    def set_epoch(self, epoch):
        self.dl.set_epoch(epoch)

    def __iter__(self):
        for x, y in self.dl:
            self.seen.append((x.clone(), y.clone()))
            yield x, y


def main(out: Path, cleanup: bool = True) -> None:
    torch.set_num_threads(1)
    D.setup(torch.device("cpu"))
    shard = {"rank": D.rank(), "world_size": D.world_size()}
    rng = np.random.default_rng(0)
    docs = [rng.integers(2, 40, size=n).tolist() for n in rng.integers(3, 30, size=24)]  # the same on every rank
    cfg = TrainConfig(seed=0, progress=False, precision="fp32")  # pinned: `auto` depends on the host

    train = Recorder(LMLoader(docs[:20], bs=4, seq_len=6, shuffle=True, seed=1, **shard))
    valid = LMLoader(docs[20:], bs=4, seq_len=6, shuffle=False, **shard)
    torch.manual_seed(0)
    lm = LanguageModel(40, lm_config(emb_sz=8, n_hid=12, n_layers=2, drop_mult=0.0))
    learn = Learner(lm, train, valid, cfg=cfg, device="cpu")
    learn.freeze()
    learn.fit_one_cycle(1, 1e-2)
    learn.unfreeze()
    learn.fit_one_cycle(2, slice(1e-3, 1e-2))

    labels = list(range(24))  # one class per document: y names the document
    ctrain = Recorder(ClasLoader(docs, labels, bs=4, seq_len=5, shuffle=True, seed=2, **shard))
    cvalid = ClasLoader(docs[:10], labels[:10], bs=4, seq_len=5, shuffle=False, **shard)
    torch.manual_seed(0)
    clas = TextClassifier(40, 24, clas_config(emb_sz=8, n_hid=12, n_layers=2), lin_ftrs=[6], bptt=5, max_len=20)
    clearn = Learner(clas, ctrain, cvalid, metrics=("accuracy",), cfg=cfg, device="cpu")
    clearn.freeze_to(-2)
    clearn.fit_one_cycle(1, 1e-2)
    clearn.unfreeze()
    clearn.fit_one_cycle(1, 1e-3)

    # precision 'auto': on a CPU with native bf16 each rank times a step of its own share; they must agree
    auto = Learner(LanguageModel(40, lm_config(emb_sz=8, n_hid=12, n_layers=2)), train.dl,
                   cfg=TrainConfig(progress=False), device="cpu")

    torch.save({"lm": lm.state_dict(), "lm_seen": train.seen, "lm_history": learn.history,
                "clas": clas.state_dict(), "clas_seen": ctrain.seen, "clas_history": clearn.history,
                "auto": [auto.precision.name, auto.bf16_speedup], "world_size": D.world_size()},
               out / f"rank{D.rank()}.pt")
    if cleanup:
        D.cleanup()


def run_script(out: Path) -> None:
    """scripts/finetune_lm.py in this process group (its main() finds it set up, and leaves it at the end)."""
    from run_scripts import script

    script("finetune_lm").main(["--preset", "tiny", "--lm-docs", "20", "--threads", "1", "--quiet", "--seed", "0",
                      "--n-samples", "1", "--n-words", "4", "--cache-dir", str(out / "cache"),
                      "--csv", str(ROOT / "data" / "samples" / "movie_reviews_sample.csv")])


if __name__ == "__main__":
    D.setup(torch.device("cpu"))
    if "--scripts" in sys.argv:
        main(Path(sys.argv[1]), cleanup=False)
        run_script(Path(sys.argv[1]))
    else:
        main(Path(sys.argv[1]))
