"""The AWD-LSTM regularisers: dropout_mask, RNNDropout, WeightDropout, EmbeddingDropout."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from awdlstm.dropout import EmbeddingDropout, RNNDropout, WeightDropout, dropout_mask


def test_dropout_mask_values_and_rate():
    torch.manual_seed(0)
    m = dropout_mask(torch.zeros(1), (200, 100), 0.3)
    assert m.shape == (200, 100)
    vals = m.unique()
    assert len(vals) == 2 and vals[0] == 0 and vals[1].item() == pytest.approx(1 / 0.7)
    assert abs((m == 0).float().mean().item() - 0.3) < 0.02


def test_rnn_dropout_one_mask_for_all_time_steps():
    torch.manual_seed(0)
    dp = RNNDropout(0.5).train()
    y = dp(torch.ones(4, 9, 6))
    assert torch.equal(y, y[:, :1].expand_as(y))  # every time step uses the same mask
    assert (y == 0).any() and (y == 2.0).any()
    dp.eval()
    x = torch.randn(4, 9, 6)
    assert torch.equal(dp(x), x)
    assert torch.equal(RNNDropout(0.0).train()(x), x)


def _lstm():
    torch.manual_seed(0)
    return nn.LSTM(5, 7, batch_first=True)


def test_weight_dropout_eval_is_plain_lstm_and_keeps_parameters():
    lstm = _lstm()
    names = [n for n, _ in lstm.named_parameters()]
    wd = WeightDropout(lstm, 0.5).eval()
    x, hx = torch.randn(3, 4, 5), (torch.randn(1, 3, 7), torch.randn(1, 3, 7))
    out, (h, c) = wd(x, hx)
    ref, (rh, rc) = lstm(x, hx)
    assert torch.allclose(out, ref, atol=1e-6) and torch.allclose(h, rh, atol=1e-6) and torch.allclose(c, rc, atol=1e-6)
    # the nn.LSTM is left untouched: same parameter names, the raw weight is still its parameter
    assert [n for n, _ in lstm.named_parameters()] == names
    assert [n for n, _ in wd.named_parameters()] == [f"module.{n}" for n in names]


def test_weight_dropout_train_drops_hidden_weights_and_resamples():
    lstm = _lstm()
    raw = lstm.weight_hh_l0.detach().clone()
    wd = WeightDropout(lstm, 0.5).train()
    x, hx = torch.randn(3, 4, 5), (torch.zeros(1, 3, 7), torch.zeros(1, 3, 7))
    torch.manual_seed(3)
    out1, _ = wd(x, hx)
    out2, _ = wd(x, hx)
    assert not torch.allclose(out1, out2)  # a new mask at every forward pass
    assert torch.equal(lstm.weight_hh_l0, raw)  # the raw weight is never overwritten
    # same draw by hand: F.dropout on weight_hh_l0, then the LSTM with that weight
    torch.manual_seed(3)
    dropped = F.dropout(raw, 0.5, training=True)
    ref = nn.LSTM(5, 7, batch_first=True)
    ref.load_state_dict({**lstm.state_dict(), "weight_hh_l0": dropped})
    assert torch.allclose(out1, ref(x, hx)[0], atol=1e-6)
    out1.sum().backward()
    assert lstm.weight_hh_l0.grad is not None and lstm.weight_hh_l0.grad.abs().sum() > 0


def test_weight_dropout_rejects_bad_input():
    with pytest.raises(TypeError, match="nn.LSTM"):
        WeightDropout(nn.GRU(3, 4), 0.5)
    with pytest.raises(ValueError, match="weight_xx"):
        WeightDropout(nn.LSTM(3, 4), 0.5, layer_names=("weight_xx",))


def test_embedding_dropout_drops_whole_words():
    torch.manual_seed(0)
    emb = nn.Embedding(50, 6, padding_idx=1)
    edp = EmbeddingDropout(emb, 0.5).train()
    words = torch.arange(50).repeat(2, 1)  # every word twice
    y = edp(words)  # (2, 50, 6)
    zero_rows = (y[0] == 0).all(1)
    assert 10 < int(zero_rows.sum()) < 40
    assert torch.equal(y[0], y[1])  # one mask per word, not per position
    assert torch.allclose(y[0][~zero_rows], emb.weight[~zero_rows] * 2)
    y.sum().backward()
    assert torch.equal(emb.weight.grad[1], torch.zeros(6))  # padding_idx gets no gradient
    edp.eval()
    assert torch.equal(edp(words), emb(words))
