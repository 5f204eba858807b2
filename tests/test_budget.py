"""The time-budget rule (awdlstm/budget.py): a pure function of (budget, measured speeds, corpus lengths).

Speeds are given, not measured: a host like the bf16 one the presets were tuned on, an AVX2 host ~2x slower, a
faster one; the plan must shrink on the slow host, grow on the fast one, stay within the budget, and keep every
field the user set."""
import dataclasses

import numpy as np
import pytest

from awdlstm import budget
from awdlstm.budget import CorpusStats, Plan, Speeds, expected_seconds, make_plan, schedule

# the embedded corpus at the `cpu` presets: 25,000 reviews, 7.5M tokens; 20,000 / 5,000 classifier reviews
RNG = np.random.default_rng(0)
LENGTHS = np.clip(RNG.lognormal(5.4, 0.7, 25_000).astype(int), 10, 3000)
CORPUS = CorpusStats(25_000, int(LENGTHS.sum()), LENGTHS[:20_000], LENGTHS[20_000:], int(LENGTHS.sum()))
# the bf16 host: LM 20k tokens/s at vocab 8,000 (1 thread), 28k at 4,000; classifier 40k / 100k / 200k tokens/s
BF16 = Speeds(lm_s_tok=5e-5, lm_s_tok_half=3.5e-5, lm_vocab=8000, lm_eval_s_tok=3e-5, clas_s_tok=2.5e-5,
              clas_head_s_tok=1e-5, clas_eval_s_tok=5e-6, bow_s_tok=8e-6, precision="bf16", jobs=2)


def scaled(s: Speeds, k: float) -> Speeds:
    return dataclasses.replace(s, **{f: getattr(s, f) * k for f in ("lm_s_tok", "lm_s_tok_half", "lm_eval_s_tok",
                                                                    "clas_s_tok", "clas_head_s_tok",
                                                                    "clas_eval_s_tok", "bow_s_tok")})


def work(p: Plan) -> tuple:
    return (budget.passes_of(p, CORPUS), p.max_vocab, p.read_len, p.clas_epochs[3])


@pytest.mark.parametrize("preset, base", [("cpu", 0.5), ("cpu-hour", 1.0)])  # cpu: 2 threads, ~2x 1 thread
def test_slow_host_less_work_fast_host_more_never_over_budget(preset, base):
    ref = budget.reference(preset)
    plans = {k: make_plan(preset, scaled(BF16, k * base), CORPUS, spent_s=30) for k in (0.5, 1.0, 2.2, 3.0)}
    for k, p in plans.items():
        assert p.fits and p.expected_s["total"] <= p.minutes * 60 * (1 - budget.MARGIN) + 1e-6, (k, p)
        assert p.expected_s == expected_seconds(p, scaled(BF16, k * base), CORPUS, 30)
    fast, slow, slower = plans[0.5], plans[2.2], plans[3.0]
    assert budget.passes_of(fast, CORPUS) > budget.passes_of(ref, CORPUS)  # grows: LM epochs first
    assert all(a <= b for a, b in zip(work(slower), work(slow)))  # slower host, no field larger
    assert work(slower) != work(slow) and work(slow) < work(ref)  # and less work than the preset's
    assert slow.max_vocab < ref.max_vocab  # the vocab shrinks first


def test_shrink_order_and_floors():
    # a host 2.2x slower than the bf16 one: the vocab goes first, to its floor, before the read length moves
    p = make_plan("cpu-hour", scaled(BF16, 2.2), CORPUS)
    if p.read_len < budget.reference("cpu-hour").read_len:
        assert p.max_vocab == budget.RANGES["cpu-hour"].max_vocab[0]
    # a hopeless host: every field at its floor, and the plan says it does not fit
    p = make_plan("cpu", scaled(BF16, 50), CORPUS)
    r = budget.RANGES["cpu"]
    assert not p.fits and p.max_vocab == r.max_vocab[0] and p.read_len == r.read_len[0]
    assert p.clas_epochs[3] == r.last_epochs[0] and budget.passes_of(p, CORPUS) == pytest.approx(r.lm_passes[0],
                                                                                                 abs=0.01)
    assert "WARNING" in budget.describe(p)


def test_overrides_win():
    slow = scaled(BF16, 3.0)
    p = make_plan("cpu-hour", slow, CORPUS, overrides={"lm_epochs": 3, "max_vocab": 8000})
    assert p.lm_epochs == 3 and p.max_vocab == 8000 and p.lm_docs == 0  # kept: the rest shrinks around them
    assert p.read_len < budget.reference("cpu-hour").read_len
    fast = make_plan("cpu", scaled(BF16, 0.3), CORPUS, overrides={"read_len": 150})
    assert fast.read_len == 150 and fast.lm_epochs > 1
    with pytest.raises(ValueError, match="not fields of a plan"):
        make_plan("cpu", BF16, CORPUS, overrides={"epochs": 3})


def test_more_minutes_more_work_and_deterministic():
    s = scaled(BF16, 1.1)
    a, b = make_plan("cpu", s, CORPUS, minutes=15), make_plan("cpu", s, CORPUS, minutes=30)
    assert work(b) >= work(a) and work(b) != work(a)
    assert make_plan("cpu", s, CORPUS, minutes=15) == a  # same inputs, same plan


def test_schedule_reads_fresh_reviews_before_repeating():
    assert schedule(1.0, 1000) == (1, 0)
    assert schedule(0.6, 1000) == (1, 600)
    assert schedule(2.5, 1000) == (3, 833)   # 3 epochs of 83%: each epoch still reads >= 80%
    assert schedule(2.2, 1000) == (2, 0)     # 3 x 73% would repeat more: 2 whole epochs


def test_vocab_line_and_stage_costs():
    assert BF16.lm_at(8000) == pytest.approx(5e-5) and BF16.lm_at(4000) == pytest.approx(3.5e-5)
    p = budget.reference("cpu")
    e = expected_seconds(p, BF16, CORPUS, spent_s=12.5)
    tokens = CORPUS.lm_tokens
    assert e["lm"] == pytest.approx(tokens * 0.9 * 5e-5 + tokens * 0.1 * 3e-5 + budget.STAGE_OVERHEAD_S, abs=0.1)
    train, valid = np.minimum(LENGTHS[:20_000], 200).sum(), np.minimum(LENGTHS[20_000:], 200).sum()
    clas = budget.STAGE_OVERHEAD_S + 2 * valid * 5e-6 + 5 * valid * 5e-6 + train * (1e-5 + (1e-5 + 0.25 * 1.5e-5)
                                                                                     + 3 * 2.5e-5)
    assert e["clas"] == pytest.approx(clas, abs=0.1)
    assert e["total"] == pytest.approx(90 + 12.5 + e["lm"] + e["clas"] + e["bow"], abs=0.2)


def test_plan_round_trip_and_recipes():
    p = make_plan("cpu-hour", scaled(BF16, 2.2), CORPUS)
    assert Plan.from_dict(p.to_dict()) == p
    lm, clas = p.recipes()
    assert (lm.epochs, lm.lm_docs, lm.max_vocab, lm.precision) == (p.lm_epochs, p.lm_docs, p.max_vocab, "bf16")
    assert clas.max_tokens == -p.read_len and clas.max_len == p.read_len and clas.epochs == p.clas_epochs
    flags = budget.flags(p)
    assert flags[flags.index("--read-len") + 1] == str(p.read_len)
    with pytest.raises(ValueError, match="sizes the presets"):
        budget.reference("gpu")
