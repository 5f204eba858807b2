"""Adam with decoupled weight decay equals fastai's Adam; freezing and norm/bias handling."""
import pytest
import torch
from torch import nn

from awdlstm.optim import Adam, norm_bias_params

# Generated once with fastai 2.8.12 in the reference venv (/work/refenv/bin/python): the same seed, params,
# gradients `sin(3p + step)` and per-step (lrs, mom); fastai's Adam with `state[b0]['do_wd'] = False`.
FASTAI_W0 = [1.5640588998794556, -0.28257349133491516, -2.1843101978302, 0.5462269186973572,
             -1.0757395029067993, -1.4141050577163696]
FASTAI_B0 = [0.3765195310115814, 0.8333532214164734, -0.6914527416229248]
FASTAI_W1 = [-0.39068466424942017, -0.5241241455078125, 0.022645719349384308, -0.7190209627151489]
SCHED = [([1e-2, 3e-2], 0.95), ([2e-2, 5e-2], 0.9), ([5e-3, 1e-1], 0.85), ([1e-3, 2e-2], 0.9)]


def test_adam_matches_fastai_steps():
    torch.manual_seed(0)
    w0, b0, w1 = (nn.Parameter(torch.randn(2, 3)), nn.Parameter(torch.randn(3)), nn.Parameter(torch.randn(4)))
    start = [w0.detach().clone(), b0.detach().clone(), w1.detach().clone()]
    opt = Adam([[w0, b0], [w1]], lr=1e-3, no_wd=[b0])
    assert opt.hypers[0] == dict(lr=1e-3, mom=0.9, sqr_mom=0.99, eps=1e-5, wd=0.01)
    for step, (lrs, mom) in enumerate(SCHED):
        for p in (w0, b0, w1):
            p.grad = torch.sin(p.detach() * 3 + step)
        opt.set_hyper("lr", lrs)
        opt.set_hyper("mom", mom)
        opt.step()
    for p, want, p0 in zip((w0, b0, w1), (FASTAI_W0, FASTAI_B0, FASTAI_W1), start, strict=True):
        assert not torch.equal(p.detach(), p0)
        torch.testing.assert_close(p.detach().flatten(), torch.tensor(want), rtol=0, atol=1e-7)
    assert opt.state[id(w1)]["step"] == 4


def test_decoupled_weight_decay_and_no_wd():
    p, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    opt = Adam([[p, b]], lr=0.1, wd=0.5, no_wd=[b])
    p.grad, b.grad = torch.zeros(3), torch.zeros(3)  # zero gradient: only the decay moves p
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((3,), 0.95))
    torch.testing.assert_close(b.detach(), torch.ones(3))


def test_freeze_to_no_update_no_decay_and_train_bn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    groups = [list(model[0].parameters()) + list(model[1].parameters()), list(model[2].parameters())]
    nb = norm_bias_params(model)
    assert {id(p) for p in nb} == {id(model[0].bias), id(model[1].weight), id(model[1].bias), id(model[2].bias)}
    opt = Adam(groups, lr=1e-2, wd=0.1, no_wd=nb, train_always=norm_bias_params(model, with_bias=False))
    opt.freeze_to(-1)
    assert not model[0].weight.requires_grad and model[1].weight.requires_grad and model[2].weight.requires_grad
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(8, 3)).pow(2).mean().backward()
    opt.step()
    after = list(model.parameters())
    assert torch.equal(after[0], before[0]) and torch.equal(after[1], before[1])  # frozen linear: untouched
    assert not torch.equal(after[2], before[2])  # BatchNorm weight trains although its group is frozen
    assert not torch.equal(after[4], before[4])
    opt.zero_grad()
    opt.freeze_to(0)
    assert all(p.requires_grad for p in model.parameters()) and opt.state == {}
    with pytest.warns(UserWarning, match="whole model is frozen"):
        opt.freeze_to(2)


def test_state_dict_round_trip():
    p = nn.Parameter(torch.randn(5))
    opt = Adam([[p]], lr=1e-2)
    p.grad = torch.randn(5)
    opt.step()
    sd = opt.state_dict()
    q = nn.Parameter(p.detach().clone())
    opt2 = Adam([[q]], lr=1.0)
    opt2.load_state_dict(sd)
    g = torch.randn(5)
    p.grad, q.grad = g, g.clone()
    opt.step()
    opt2.step()
    assert torch.equal(p, q) and opt2.hypers == opt.hypers


def test_bad_groups():
    p = nn.Parameter(torch.randn(2))
    with pytest.raises(ValueError, match="in two groups"):
        Adam([[p], [p]])
    with pytest.raises(ValueError, match="3 values for 'lr'"):
        Adam([[p]]).set_hyper("lr", [1, 2, 3])


def test_works_with_grad_scaler():
    """torch.amp.GradScaler (used for fp16 on CUDA) drives our Adam through its param_groups view."""
    torch.manual_seed(0)
    p = nn.Parameter(torch.randn(4))
    q = nn.Parameter(p.detach().clone())
    plain, scaled = Adam([[q]], lr=1e-2), Adam([[p]], lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale((p * torch.arange(4.0)).sum()).backward()
    scaler.step(scaled)
    scaler.update()
    (q * torch.arange(4.0)).sum().backward()
    plain.step()
    torch.testing.assert_close(p.detach(), q.detach())
    p.grad = torch.full((4,), float("inf"))  # an overflow: the scaler skips the step
    before = p.detach().clone()
    scaler.step(scaled)
    scaler.update()
    assert torch.equal(p.detach(), before) and scaler.get_scale() < 1024.0
