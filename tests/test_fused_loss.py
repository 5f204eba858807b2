"""awdlstm/fused_loss.py: the language model's decoder and its loss in one pass agree with the plain order of
operations (`F.linear` then `F.cross_entropy`; `LanguageModel.forward` then `flat_cross_entropy`)."""
import inspect

import pytest
import torch

from awdlstm import LanguageModel, lm_config
from awdlstm.fused_loss import fused_lm_loss, linear_cross_entropy
from awdlstm.train import flat_cross_entropy


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
