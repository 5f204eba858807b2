"""NaN and inf during training: a bad batch is skipped, a run that stays bad stops with a clear message, and the
last good `last.pt` is never replaced by non-finite weights. (Persistent NaN losses: tests/test_train.py.)"""
import pytest
import torch
from tiny_models import TinyLM, lm_batches

from awdlstm.train import Learner, NonFiniteLoss, TrainConfig
from awdlstm.train_checkpoint import load_checkpoint

FAST = dict(progress=False, seed=0, precision="fp32")


def steps(learn: Learner) -> set[int]:
    """Adam steps taken, per parameter."""
    return {st["step"] for st in learn.opt.state.values()}


class NaNAt(TinyLM):
    """TinyLM whose logits are NaN on the forward calls listed in `bad` (0-based, training and validation)."""

    def __init__(self, bad):
        super().__init__()
        self.bad, self.calls = set(bad), 0

    def forward(self, x):
        logits, raw, out = super().forward(x)
        self.calls += 1
        return (logits * float("nan") if self.calls - 1 in self.bad else logits), raw, out


def test_one_nan_batch_is_skipped_and_training_goes_on(tmp_path):
    torch.manual_seed(0)
    learn = Learner(NaNAt({1}), lm_batches(4), None, tmp_path, cfg=TrainConfig(**FAST))
    with pytest.warns(UserWarning, match=r"non-finite loss \(nan\); step skipped \(1 in a row\)"):
        learn.fit_one_cycle(1, 1e-2)
    assert steps(learn) == {3}  # 4 batches, 1 skipped
    assert learn.bad_steps == 0 and all(torch.isfinite(p).all() for p in learn.model.parameters())
    assert load_checkpoint(tmp_path / "last.pt")["fit"]["epoch"] == 1


def inf_grad_at(param: torch.Tensor, call: int) -> list[int]:
    """Make the gradient of `param` infinite on its `call`-th backward (0-based); the loss stays finite."""
    n = [0]

    def hook(g):
        n[0] += 1
        return g * float("inf") if n[0] - 1 == call else g

    param.register_hook(hook)
    return n


def test_inf_gradients_without_scaler_stop_before_saving_bad_weights(tmp_path):
    """fp32 has no scaler: an inf gradient makes Adam write NaN weights; the epoch's end notices, stops, and
    keeps the previous epoch's last.pt."""
    torch.manual_seed(0)
    model = TinyLM()
    learn = Learner(model, lm_batches(4), None, tmp_path, cfg=TrainConfig(**FAST))
    inf_grad_at(model.proj.bias, 5)  # 2nd fit, batch 1: its epoch ends with < max_bad_steps NaN losses
    good = None
    with pytest.warns(UserWarning, match="non-finite loss"), \
            pytest.raises(NonFiniteLoss, match=r"non-finite weights \(proj.bias\) after epoch 0: training stopped. "
                                               r"Last good checkpoint: .*last.pt"):
        learn.fit_one_cycle(1, 1e-2)
        good = (tmp_path / "last.pt").read_bytes()
        learn.fit_one_cycle(2, 1e-2)
    assert good is not None and (tmp_path / "last.pt").read_bytes() == good
    assert torch.isnan(model.proj.bias).all()


def test_inf_gradients_under_a_grad_scaler_skip_the_step(tmp_path):
    """fp16 on CUDA trains under a GradScaler: an overflowing step is skipped and the scale halved, nothing
    stops. The same path on the CPU (torch.amp.GradScaler('cpu'))."""
    torch.manual_seed(0)
    model = TinyLM()
    learn = Learner(model, lm_batches(4), None, tmp_path, cfg=TrainConfig(**FAST))
    learn.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    n = inf_grad_at(model.proj.bias, 1)
    learn.fit_one_cycle(2, 1e-2)
    assert n[0] == 8 and steps(learn) == {7}  # 8 backward passes, the overflowing one skipped
    assert learn.scaler.get_scale() == 2.0**7
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert load_checkpoint(tmp_path / "last.pt")["fit"]["epoch"] == 2
