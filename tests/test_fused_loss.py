"""awdlstm/fused_loss.py: the language model's decoder and its loss in one pass agree with the plain order of
operations (`F.linear` then `F.cross_entropy`; `LanguageModel.forward` then `flat_cross_entropy`); its bf16
version (fused_loss_bf16.py) agrees with the fp32 one within a stated bf16 tolerance, on CPUs with native bf16."""
import inspect

import pytest
import torch

from awdlstm import LanguageModel, lm_config
from awdlstm.fused_loss import fused_lm_loss, linear_cross_entropy
from awdlstm.fused_loss_bf16 import fused_lm_loss_bf16, linear_cross_entropy_bf16
from awdlstm.loss import flat_cross_entropy
from awdlstm.precision import cpu_has_fast_bf16


@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_linear_cross_entropy_equals_linear_then_cross_entropy(chunk):
    torch.manual_seed(0)
    x = torch.randn(3, 7, 8, requires_grad=True)  # (bs, sl, d)
    w = torch.randn(50, 8, requires_grad=True)
    b = torch.randn(50, requires_grad=True)
    y = torch.randint(0, 50, (3, 7))
    ref = torch.nn.functional.cross_entropy(torch.nn.functional.linear(x, w, b).reshape(-1, 50), y.reshape(-1))
    (2 * ref).backward()
    grads = [t.grad.clone() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    out = linear_cross_entropy(x, w, b, y, chunk=chunk)
    (2 * out).backward()  # the incoming gradient scales the stored ones
    assert torch.allclose(out, ref, atol=1e-5)
    for t, g in zip((x, w, b), grads):
        assert torch.allclose(t.grad, g, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(linear_cross_entropy(x, w, None, y, chunk=chunk),
                              torch.nn.functional.cross_entropy((x @ w.t()).reshape(-1, 50), y.reshape(-1)), atol=1e-5)
    with pytest.raises(ValueError, match="targets"):
        linear_cross_entropy(x, w, b, y[:, :3])


def test_the_language_models_forward_returns_logits():
    """The book's forward: tokens in, (logits, raw_out, out) out; no loss hidden in it."""
    assert list(inspect.signature(LanguageModel.forward).parameters) == ["self", "x"]
    lm = LanguageModel(30, lm_config(emb_sz=8, n_hid=12, n_layers=2))
    logits, raw_out, out = lm(torch.randint(2, 30, (2, 5)))
    assert logits.shape == (2, 5, 30) and raw_out.shape == out.shape == (2, 5, 8)


def test_fused_lm_loss_is_the_forward_then_the_cross_entropy():
    """Same dropout draws, same loss, outputs and gradients as `lm(x)` then `flat_cross_entropy`."""
    torch.manual_seed(0)
    lm = LanguageModel(40, lm_config(emb_sz=8, n_hid=12, n_layers=2, drop_mult=0.5)).train()
    x, y = torch.randint(2, 40, (3, 6)), torch.randint(2, 40, (3, 6))
    results = []
    for fused in (False, True):
        torch.manual_seed(1)
        lm.reset()
        lm.zero_grad()
        if fused:
            loss, raw_out, out = fused_lm_loss(lm, x, y)
        else:
            logits, raw_out, out = lm(x)
            loss = flat_cross_entropy(logits, y)
        (loss + out.pow(2).mean()).backward()
        results.append((loss.detach(), raw_out.detach(), out.detach(),
                        {n: p.grad.clone() for n, p in lm.named_parameters()}))
    (l0, r0, o0, g0), (l1, r1, o1, g1) = results
    assert torch.equal(r0, r1) and torch.equal(o0, o1)  # the encoder and dropout ran identically
    torch.testing.assert_close(l1, l0, atol=1e-6, rtol=1e-6)
    assert g0.keys() == g1.keys()
    for n in g0:
        torch.testing.assert_close(g1[n], g0[n], atol=1e-6, rtol=1e-5, msg=n)


# --- the bf16 version (fused_loss_bf16.py): products in bf16, softmax and loss in fp32 -------------------------
NATIVE = cpu_has_fast_bf16()
needs_native_bf16 = pytest.mark.skipif(not NATIVE, reason="this CPU has no native bf16 (oneDNN reports none)")
# bf16 keeps 8 bits of mantissa: each product is rounded to ~0.4%; the loss (a mean of log-sum-exps, in fp32)
# moves far less. Stated tolerances: loss within 1e-3 relative, each gradient within 2% of its largest entry.
BF16_LOSS_RTOL, BF16_GRAD_TOL = 1e-3, 2e-2


def _close_to_bf16(got: torch.Tensor, want: torch.Tensor, name: str) -> None:
    err = (got.float() - want).abs().max().item()
    assert err <= BF16_GRAD_TOL * want.abs().max().item(), (name, err, want.abs().max().item())


@needs_native_bf16
@pytest.mark.parametrize(("chunk", "rows", "bias"), [(512, 16, True), (5, 3, True), (4, 8, False)])
def test_linear_cross_entropy_bf16_agrees_with_fp32(chunk, rows, bias):
    torch.manual_seed(0)
    x = torch.randn(4, 9, 32, requires_grad=True)
    w = (torch.randn(300, 32) * 0.3).requires_grad_()
    b = (torch.randn(300) * 0.5).requires_grad_() if bias else None
    y = torch.randint(0, 300, (4, 9))
    params = [t for t in (x, w, b) if t is not None]
    ref = linear_cross_entropy(x, w, b, y)
    want = torch.autograd.grad(3 * ref, params)
    got_loss = linear_cross_entropy_bf16(x, w, b, y, chunk=chunk, rows=rows)
    got = torch.autograd.grad(3 * got_loss, params)  # the incoming gradient scales the stored ones
    assert got_loss.dtype == torch.float32
    torch.testing.assert_close(got_loss, ref, rtol=BF16_LOSS_RTOL, atol=0)
    for name, g, r in zip("xwb", got, want, strict=False):
        assert g.dtype == r.dtype == torch.float32
        _close_to_bf16(g, r, name)
    assert not torch.equal(got[1], want[1])  # the products really ran in bf16
    xb = x.detach().bfloat16().requires_grad_()  # a bf16 input (the encoder's output under autocast)
    (gx,) = torch.autograd.grad(linear_cross_entropy_bf16(xb, w, b, y, chunk=chunk, rows=rows), [xb])
    assert gx.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="rows"):
        linear_cross_entropy_bf16(x, w, b, y, rows=0)


@needs_native_bf16
def test_fused_lm_loss_bf16_agrees_with_the_fp32_fused_loss():
    torch.manual_seed(0)
    lm = LanguageModel(200, lm_config(emb_sz=16, n_hid=32, n_layers=2, drop_mult=0.0)).train()
    x, y = torch.randint(2, 200, (4, 12)), torch.randint(2, 200, (4, 12))
    results = []
    for fn in (fused_lm_loss, fused_lm_loss_bf16):
        lm.reset()
        lm.zero_grad()
        loss, raw_out, out = fn(lm, x, y)
        loss.backward()
        results.append((loss.detach(), raw_out, {n: p.grad.clone() for n, p in lm.named_parameters()}))
    (l32, r32, g32), (l16, r16, g16) = results
    assert r16.dtype == torch.bfloat16 and l16.dtype == torch.float32  # the LSTMs ran in bf16, the loss in fp32
    torch.testing.assert_close(l16, l32, rtol=BF16_LOSS_RTOL, atol=0)
    torch.testing.assert_close(r16.float(), r32.detach(), atol=0.02, rtol=0.02)
    for n in g32:
        _close_to_bf16(g16[n], g32[n], n)
    assert all(p.dtype == torch.float32 for p in lm.parameters())


@needs_native_bf16
def test_the_training_loop_chooses_the_bf16_fused_loss_and_learns_like_fp32():
    """Learner: a LanguageModel in bf16 on a CPU trains through fused_lm_loss_bf16; same data, same draws: the
    train and validation losses of a short fit stay within bf16 rounding of the fp32 run's."""
    from awdlstm.train import Learner, TrainConfig

    g = torch.Generator().manual_seed(0)
    batches = [(torch.randint(2, 60, (4, 8), generator=g), torch.randint(2, 60, (4, 8), generator=g)) for _ in range(6)]
    rows = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        lm = LanguageModel(60, lm_config(emb_sz=16, n_hid=32, n_layers=2, drop_mult=0.3))
        learn = Learner(lm, batches, batches[:2], device="cpu",
                        cfg=TrainConfig(progress=False, seed=0, precision=precision))
        assert learn.fused_loss_fn is {"fp32": fused_lm_loss, "bf16": fused_lm_loss_bf16}[precision]
        rows[precision] = learn.fit_one_cycle(2, 1e-2)
    for a, b in zip(rows["fp32"], rows["bf16"], strict=True):
        for k in ("train_loss", "valid_loss"):
            assert b[k] == pytest.approx(a[k], rel=5e-3), (k, a[k], b[k])
    assert rows["fp32"][-1]["train_loss"] < rows["fp32"][0]["train_loss"]  # it learned something
