"""The training loop of ULMFiT (chapter 10's `Learner`): `fit_one_cycle` (its schedule: chapter 13), `freeze_to`
(gradual unfreezing: chapter 10), `lr_find` (chapter 5).

One readable loop serves the language model and the classifier. Per batch:

    logits, raw_out, out = model(x)                    # (bs, sl, vocab) or (bs, n_class); (bs, sl, emb) twice
    loss = cross_entropy(logits, y)                    # flattened for the LM, in fp32
    (a language model in fp32: loss, raw_out, out = fused_lm_loss(model, x, y), its decoder fused with the
     loss, the logits never stored: fused_loss.py; in bf16 on a CPU fused_loss_bf16.py; see `Learner.fused_loss`)
    loss + alpha * AR(out) + beta * TAR(raw_out)       # activation regularisation, training only
    backward, optional gradient clipping, Adam step with the 1cycle lr and momentum of this batch

and per epoch: reset the hidden state, train, reset, validate, print fastai's table row, save the history
and a checkpoint (`run_dir/last.pt`) from which an interrupted fit resumes bit for bit (train_checkpoint.py:
save, load, resume, the non-finite and Ctrl-C guards; train_precision.py: the step 'auto' precision times).
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from awdlstm import distributed
from awdlstm.checkpoint import save_torch
from awdlstm.classifier import TextClassifier
from awdlstm.fused_loss import fused_lm_loss
from awdlstm.fused_loss_bf16 import fused_lm_loss_bf16
from awdlstm.loss import ar_tar, flat_cross_entropy
from awdlstm.lr_find import lr_find
from awdlstm.model import LanguageModel
from awdlstm.optim import Adam, norm_bias_params
from awdlstm.precision import resolve_precision
from awdlstm.report import EpochTable, SmoothLoss, format_time, plot_history, write_history
from awdlstm.schedule import OneCycle, group_lrs
from awdlstm.train_checkpoint import (
    FitInterrupted,
    NonFiniteLoss,
    Replay,
    check_finite,
    learner_state,
    restore_learner,
    save_interrupted,
    set_seed,
    stopped,
)
from awdlstm.train_precision import precision_note, time_bf16_step

__all__ = ["Learner", "TrainConfig", "METRICS", "FitInterrupted", "NonFiniteLoss"]  # the errors: train_checkpoint.py

METRICS = ("accuracy", "perplexity")


@dataclass
class TrainConfig:
    """Training hyper-parameters; the defaults are fastai's `TextLearner` ones (book, chapter 10)."""

    moms: tuple[float, float, float] = (0.8, 0.7, 0.8)  # 1cycle momentum (Learner default: 0.95, 0.85, 0.95)
    wd: float = 0.01  # decoupled weight decay
    sqr_mom: float = 0.99
    eps: float = 1e-5
    alpha: float = 2.0  # AR: alpha * mean(dropped_out**2)
    beta: float = 1.0  # TAR: beta * mean((raw_out[:, 1:] - raw_out[:, :-1])**2)
    clip: float | None = None  # max gradient norm, None = no clipping (fastai's text learners do not clip)
    div: float = 25.0
    div_final: float = 1e5
    pct_start: float = 0.25
    wd_bn_bias: bool = False  # decay biases and norm layers too?
    train_bn: bool = True  # norm layers train even in frozen groups
    precision: str = "auto"  # 'auto' | 'fp32' | 'bf16' | 'fp16'
    fused_loss: bool = True  # LanguageModel in fp32 (or bf16 on a CPU): decoder + loss in one pass (fused_loss.py)
    max_bad_steps: int = 10  # stop after this many consecutive non-finite losses
    seed: int | None = None
    deterministic: bool = False  # deterministic CUDA kernels
    progress: bool = True  # tqdm bars inside epochs
    save_every_epoch: bool = True  # run_dir/last.pt after each epoch (needs a run_dir)


class Learner:
    """A model, its data, its optimizer and a run folder: the book's `Learner` without callbacks.

    `model` follows awdlstm's API: `model(x) -> (logits, raw_out, out)`, `.reset()`, `.param_groups()`.
    `train_dl` / `valid_dl` are re-iterable collections of `(x, y)` batches with a `len()`.
    `metrics` is a subset of ('accuracy', 'perplexity'): the LM uses both, the classifier accuracy.

    Under torchrun (awdlstm/distributed.py) each rank's loaders yield its share of every batch; training
    goes through a DistributedDataParallel wrapper (rebuilt after each freeze, so that it syncs exactly the
    trainable parameters), losses and metrics are averaged over ranks, and only rank 0 prints and writes.
    """

    def __init__(self, model: nn.Module, train_dl: Iterable, valid_dl: Iterable | None = None,
                 run_dir: str | Path | None = None, metrics: Sequence[str] = METRICS,
                 cfg: TrainConfig | None = None, device: str | torch.device | None = None):
        self.cfg = cfg or TrainConfig()
        bad = [m for m in metrics if m not in METRICS]
        if bad:
            raise ValueError(f"unknown metrics {bad}; choose from {METRICS}")
        if self.cfg.seed is not None:
            set_seed(self.cfg.seed, self.cfg.deterministic)
        self.device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device)
        self.train_dl, self.valid_dl, self.metrics = train_dl, valid_dl, list(metrics)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        workload = "lm" if isinstance(model, LanguageModel) else "clas" if isinstance(model, TextClassifier) else None
        self.bf16_speedup: float | None = None  # 'auto' on a CPU with native bf16: a step timed in both (precision.py)
        self.precision = resolve_precision(self.cfg.precision, self.device, workload, self._time_bf16)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision.use_scaler else None
        groups = model.param_groups()
        self.opt = Adam(groups, lr=1e-3, sqr_mom=self.cfg.sqr_mom, eps=self.cfg.eps, wd=self.cfg.wd,
                        no_wd=[] if self.cfg.wd_bn_bias else norm_bias_params(model),
                        train_always=norm_bias_params(model, with_bias=False) if self.cfg.train_bn else [])
        self.history: list[dict] = []  # one row per epoch, all fits
        self.batches: dict[str, list] = {"iter": [], "loss": [], "lr": []}  # per training batch, all fits
        self.n_fits, self.bad_steps = 0, 0
        self.train_epochs = 0  # training epochs run so far, all fits: a loader's `set_epoch` gets it
        self.smooth = SmoothLoss()
        self.main = distributed.is_main()  # rank 0, or the only process: prints and writes files
        self._ddp: nn.Module | None = None  # the DistributedDataParallel wrapper, when several ranks train
        self._replay: Replay | None = None  # after resume(): the checkpoint's fit, until the run's calls reach it

    @property
    def fused_loss(self) -> bool:
        """Does a training step fuse the decoder and the loss? A LanguageModel in fp32 or (on a CPU) bf16, unless
        cfg.fused_loss is off."""
        return self.fused_loss_fn is not None

    @property
    def fused_loss_fn(self):
        """The fused decoder + loss a training step uses, or None: `fused_lm_loss` in fp32 (fused_loss.py),
        `fused_lm_loss_bf16` in bf16 on a CPU (fused_loss_bf16.py)."""
        if not (self.cfg.fused_loss and isinstance(self.model, LanguageModel)):
            return None
        if self.precision.name == "fp32":
            return fused_lm_loss
        if self.precision.name == "bf16" and self.device.type == "cpu":
            return fused_lm_loss_bf16
        return None

    @property
    def train_model(self) -> nn.Module:
        """What a training step calls: the model, or when several ranks train, the model wrapped in
        DistributedDataParallel (with the fused loss: the model and its loss, `distributed.WithLoss`)."""
        if distributed.world_size() == 1:
            return self.model
        if self._ddp is None:  # built for the parameters trainable now (see freeze_to)
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = distributed.WithLoss(self.model, self.fused_loss_fn) if self.fused_loss else self.model
            self._ddp = nn.parallel.DistributedDataParallel(module, device_ids=ids)
        return self._ddp

    # --- freezing (the book's gradual unfreezing) ---------------------------------------------------
    def freeze_to(self, n: int) -> None:
        """Train only the parameter groups from `n` on (`-2`: the last two); clears the optimizer state."""
        if self._replay is not None:  # resuming: the checkpoint's optimizer has its fit's frozen groups
            return
        self.opt.freeze_to(n)
        self._ddp = None  # DDP syncs the parameters that required grad when it was built: rebuild it

    def freeze(self) -> None:
        """Train only the last parameter group (the decoder / the classifier head)."""
        if len(self.opt.groups) < 2:
            raise ValueError("freeze needs a model with at least two parameter groups")
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every parameter group."""
        self.freeze_to(0)

    # --- one batch ----------------------------------------------------------------------------------
    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor,
                      local: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One training batch's (loss, raw_out, out): the model's forward then the cross-entropy, or fused.
        `local`: this rank's model alone, never its DistributedDataParallel wrapper."""
        local = local or distributed.world_size() == 1
        fused = self.fused_loss_fn
        if fused is None:
            with self.precision.autocast():
                logits, raw_out, out = (self.model if local else self.train_model)(x)
            return flat_cross_entropy(logits, y), raw_out, out
        # The language model's decoder fused with its loss, the logits never stored (fused_loss.py, or in bf16
        # fused_loss_bf16.py, which runs the encoder under bf16 autocast itself):
        if local:
            return fused(self.model, x, y)
        return self.train_model(x, y)  # the same, inside DDP's forward (distributed.WithLoss says why)

    def _time_bf16(self) -> float | None:
        """For 'auto' (precision.py): how much faster one training step runs in bf16 (train_precision.py)."""
        return time_bf16_step(self)

    def precision_note(self) -> str:
        """The precision this Learner trains in, and for 'auto' on a CPU with native bf16, the timing behind it."""
        return precision_note(self)

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Forward, loss (+AR/TAR), backward, clip, step with the current hypers. Returns the plain loss."""
        x, y = self._to_device(x, y)
        loss, raw_out, out = self._forward_loss(x, y)
        n_ranks = distributed.world_size()
        loss_value = (distributed.all_reduce_sum(loss.detach()) / n_ranks).item()  # the whole batch's loss
        if not math.isfinite(loss_value):
            self.opt.zero_grad()
            self.bad_steps += 1
            warnings.warn(f"non-finite loss ({loss_value}); step skipped ({self.bad_steps} in a row)", stacklevel=2)
            if self.bad_steps >= self.cfg.max_bad_steps:
                raise stopped(self.run_dir, f"{self.bad_steps} consecutive non-finite losses")
            return loss_value
        self.bad_steps = 0
        loss_grad = loss + ar_tar(raw_out, out, self.cfg.alpha, self.cfg.beta)
        if self.scaler is not None:
            self.scaler.scale(loss_grad).backward()
            if self.cfg.clip is not None:
                self.scaler.unscale_(self.opt)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss_grad.backward()
            if self.cfg.clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
            self.opt.step()
        self.opt.zero_grad()
        return loss_value

    @torch.no_grad()
    def validate(self, dl: Iterable | None = None) -> dict[str, float]:
        """Validation loss and metrics, averaged over batches weighted by batch size (as fastai's AvgLoss)."""
        dl = self.valid_dl if dl is None else dl
        if dl is None:
            raise ValueError("validate() needs validation data: pass valid_dl to Learner or dl here")
        self.model.eval()
        self.model.reset()
        total_loss = total_acc = torch.tensor(0.0)  # float32 sums weighted by batch size, as fastai's AvgLoss
        count = 0
        progress = self.cfg.progress and self.main
        for x, y in tqdm(dl, total=_len_or_none(dl), leave=False, disable=not progress, desc="valid"):
            x, y = self._to_device(x, y)
            with self.precision.autocast():
                logits = self.model(x)[0]
            bs = y.shape[0]
            total_loss = total_loss + flat_cross_entropy(logits, y).cpu() * bs
            total_acc = total_acc + (logits.argmax(-1) == y).float().mean().cpu() * bs
            count += bs
        if distributed.world_size() > 1:  # each rank saw its share: sum the sums
            sums = torch.stack([total_loss, total_acc, torch.tensor(float(count))])
            total_loss, total_acc, count = distributed.all_reduce_sum(sums)
            count = int(count.item())
        if count == 0:
            raise ValueError("the validation data yielded no batches")
        res = {"valid_loss": (total_loss / count).item()}
        if "accuracy" in self.metrics:
            res["accuracy"] = (total_acc / count).item()
        if "perplexity" in self.metrics:
            res["perplexity"] = torch.exp(total_loss / count).item()
        return res

    # --- fit_one_cycle ------------------------------------------------------------------------------
    def fit_one_cycle(self, n_epoch: int, lr_max: float | slice | Sequence[float], start_epoch: int = 0,
                      moms: tuple[float, float, float] | None = None) -> list[dict]:
        """Train `n_epoch` epochs with the 1cycle policy (chapter 13, "1cycle Training"); `lr_max` may be `slice(lo, hi)`.

        `start_epoch` skips the epochs already done; after `resume` the fits the checkpoint had finished are
        skipped and the one it was saved in goes on from there. `n_epoch` 0 does nothing. Returns this fit's rows.
        """
        if n_epoch == 0:
            return []
        if self._replay is not None:
            start_epoch, moms = self._replay.next_fit(n_epoch, group_lrs(lr_max, len(self.opt.groups)))
            if self._replay.reached:
                self._replay = None  # the run's calls have caught up with the checkpoint
            if start_epoch is None:
                return []
        n_iter = _len_or_none(self.train_dl)
        if not n_iter:
            raise ValueError("train_dl needs a len() > 0 (the 1cycle schedule is laid out over the batches)")
        if not 0 <= start_epoch <= n_epoch:
            raise ValueError(f"start_epoch={start_epoch} outside [0, n_epoch={n_epoch}]")
        lr_max = group_lrs(lr_max, len(self.opt.groups))
        sched = OneCycle(lr_max, self.cfg.div, self.cfg.div_final, self.cfg.pct_start, moms or self.cfg.moms)
        if start_epoch == 0:
            self.n_fits += 1
            self.smooth = SmoothLoss()
        fit = {"fit": self.n_fits, "n_epoch": n_epoch, "lr_max": lr_max, "moms": list(sched.moms)}
        names = ["epoch", "train_loss"] + (["valid_loss"] + self.metrics if self.valid_dl is not None else [])
        progress = self.cfg.progress and self.main
        table = EpochTable(names + ["time"], printer=(tqdm.write if self.cfg.progress else print) if self.main
                           else lambda line: None)
        rows = []
        try:
            for epoch in range(start_epoch, n_epoch):
                start = time.time()
                if hasattr(self.train_dl, "set_epoch"):  # loaders with their own shuffling seed (LMLoader)
                    self.train_dl.set_epoch(self.train_epochs)
                self.model.train()
                self.model.reset()
                bar = tqdm(self.train_dl, total=n_iter, leave=False, disable=not progress,
                           desc=f"epoch {epoch}")
                pcts = OneCycle.pct_train(epoch, n_epoch, n_iter)  # fastai's progress of each batch
                for i, ((x, y), pct) in enumerate(zip(bar, pcts, strict=False)):  # len(train_dl) batches
                    lrs, mom = sched.lrs_moms(pct)
                    self.opt.set_hyper("lr", lrs)
                    self.opt.set_hyper("mom", mom)
                    loss = self.smooth.add(self.train_batch(x, y))
                    self.batches["iter"].append(len(self.batches["iter"]))
                    self.batches["loss"].append(loss)
                    self.batches["lr"].append(lrs[-1])
                    if i % 10 == 0:
                        bar.set_postfix(loss=f"{loss:.4f}")
                self.train_epochs += 1
                distributed.sync_buffers(self.model)  # every rank: rank 0's BatchNorm statistics
                check_finite(self.model, epoch, self.run_dir)  # never a checkpoint of NaN/inf weights
                row = {"fit": self.n_fits, "epoch": epoch, "train_loss": self.smooth.value}
                if self.valid_dl is not None:
                    row.update(self.validate())
                row["time"] = time.time() - start
                row["iter"] = len(self.batches["iter"]) - 1
                table.row([row[n] for n in names] + [format_time(row["time"])])
                rows.append(row)
                self.history.append(row)
                if self.run_dir is not None and self.main:
                    write_history(self.run_dir, self.history, self.batches)
                    if self.cfg.save_every_epoch:
                        self.save(self.run_dir / "last.pt", fit={**fit, "epoch": epoch + 1})
        except KeyboardInterrupt as e:  # Ctrl-C: save interrupted.pt, say how to resume (FitInterrupted)
            if self.run_dir is None or isinstance(e, FitInterrupted) or not self.main:
                raise
            save_interrupted(self, fit)
        finally:
            self.model.reset()
        if self.run_dir is not None and self.main:
            plot_history(self.run_dir, self.history, self.batches)
        return rows

    # --- checkpoints (train_checkpoint.py) --------------------------------------------------------
    def save(self, path: str | Path, fit: dict | None = None) -> Path:
        """Save model, optimizer, schedule position (`fit`), RNG states and history atomically."""
        path = Path(path)
        if not path.is_absolute() and path.parent == Path(".") and self.run_dir is not None:
            path = self.run_dir / path
        return save_torch(learner_state(self, fit), path)

    def load(self, path: str | Path, with_opt: bool = True) -> dict:
        """Restore a checkpoint written by `save`; returns its `fit` entry (n_epoch, lr_max, epoch done)."""
        return restore_learner(self, path, with_opt)

    def resume(self, path: str | Path) -> None:
        """Continue a run from an end-of-epoch checkpoint (`run_dir/last.pt`): load it, then make the run's
        calls again, in the same order (the same `freeze_to` and `fit_one_cycle`). The fits it had finished
        are skipped, the one it was saved in goes on from its next epoch, the rest run as usual: on a CPU the
        weights at the end equal those of an uninterrupted run, bit for bit."""
        self._replay = Replay(str(path), self.load(path))

    def check_resumed(self) -> None:
        """After the run's calls: a checkpoint whose fit the calls never reached was not this run's."""
        if self._replay is not None:
            r, self._replay = self._replay, None
            raise r.never_reached()

    def lr_find(self, **kwargs):
        """The learning-rate finder (see `awdlstm.lr_find.lr_find`)."""
        return lr_find(self, **kwargs)


def _len_or_none(dl) -> int | None:
    try:
        return len(dl)
    except TypeError:
        return None
