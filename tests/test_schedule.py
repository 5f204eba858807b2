"""The 1cycle schedule equals fastai 2.8's step by step (tests/fixtures/schedule.json)."""
import json
import math

import numpy as np
import pytest

from awdlstm.schedule import OneCycle, combined_cos, even_mults, group_lrs, sched_cos


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    return json.loads((fixtures_dir / "schedule.json").read_text())


def _lr_arg(raw):
    if isinstance(raw, dict):
        return slice(*raw["slice"])
    return raw


def test_even_mults_matches_fastai(fixture):
    args, want = fixture["even_mults"]["args"], fixture["even_mults"]["result"]
    assert even_mults(*args) == want  # bit-exact, same formula order as fastai
    assert even_mults(1e-3, 1e-2, 1) == [1e-2]


def test_group_lrs_spreads_slices():
    assert group_lrs(slice(None, 1e-2), 4) == [1e-3, 1e-3, 1e-3, 1e-2]
    assert group_lrs(0.5, 3) == [0.5, 0.5, 0.5]
    lrs = group_lrs(slice(1e-2 / 2.6**4, 1e-2), 5)
    assert lrs[-1] == pytest.approx(1e-2) and lrs[0] == pytest.approx(1e-2 / 2.6**4)
    assert np.allclose(np.diff(np.log(lrs)), np.log(2.6))  # geometric: factor 2.6 between groups
    with pytest.raises(ValueError, match="3 learning rates for 2"):
        group_lrs([1, 2, 3], 2)


@pytest.mark.parametrize("case_idx", range(4))
def test_one_cycle_equals_fastai(fixture, case_idx):
    case = fixture["cases"][case_idx]
    steps, n_epoch, n_iter = case["steps"], case["n_epoch"], case["n_batches_per_epoch"]
    sched = OneCycle(group_lrs(_lr_arg(case["lr_max"]), case["n_param_groups"]), div=case["div"],
                     div_final=case["div_final"], pct_start=case["pct_start"], moms=tuple(case["moms"]))
    pcts = [p for epoch in range(n_epoch) for p in OneCycle.pct_train(epoch, n_epoch, n_iter)]
    assert pcts == steps["pct_train"]  # float accumulation reproduced exactly
    assert len(pcts) == 20
    worst = 0.0
    for i, pct in enumerate(pcts):
        lrs, mom = sched.lrs_moms(pct)
        np.testing.assert_allclose(lrs, steps["lr"][i], rtol=2e-6, atol=0)
        np.testing.assert_allclose([mom] * len(lrs), steps["mom"][i], rtol=2e-6, atol=0)
        worst = max(worst, max(abs(a - b) / b for a, b in zip(lrs, steps["lr"][i], strict=True)))
    assert worst < 1e-12  # with fastai's float32 phase arithmetic the agreement is (close to) exact


def test_schedule_shape():
    f = combined_cos(0.25, 1.0, 10.0, 0.0)
    assert f(0.0) == pytest.approx(1.0) and f(0.25) == pytest.approx(10.0)
    assert f(0.999999) == pytest.approx(0.0, abs=1e-9)
    assert sched_cos(2.0, 4.0, 0.5) == pytest.approx(3.0)
    assert math.isclose(f(0.125), 5.5, rel_tol=1e-6)
