"""Presets sized by a time budget: how much work fits in N minutes on the machine at hand.

The `cpu` and `cpu-hour` presets are promises of time ("ULMFiT in a quarter of an hour", "in an hour"), and a
CPU without native bf16 runs the same recipe twice as slowly as one with it. So a run first measures this host
(awdlstm/speed.py times a few training steps of the language model and of the classifier at the preset's size,
in the precision the run will use, and the bag-of-words baseline on a slice of the reviews), then `make_plan`
sizes the work to the budget. The rule, a pure function of (budget, measured speeds, the corpus's lengths):

    expected = spent (tokenizing, measuring) + setup (the install, before the run could start)
             + LM:  epochs x tokens read x seconds per LM token (+ validation tokens x seconds per eval token)
             + classifier: per stage, epochs x tokens read x seconds per token of that stage (head only ...
               all layers) + validation + the final predictions
             + bag-of-words: tokens x seconds per token
    expected <= budget x (1 - MARGIN)

The seconds per LM token are linear in the vocab size (the tied decoder is `emb_sz x vocab` per token: two
measurements, at the preset's vocab and at half of it, give the line). Both directions of `cpu-hour` train side
by side, one core each, and are measured side by side: two jobs share the memory bus and the caches.

Start from the preset's recipe (what it does on the bf16 host it was tuned on). When that is over the budget,
shrink what was measured to matter least first (docs/results.md): the vocab (8,008 -> 6,008 made the
language-model step 1.2x faster on an AVX2 host, not measured to move the accuracy apart from the epochs), then
the classifier's read length (the last 400 -> 200 tokens, no fewer: the linear model loses 0.9 points reading only
the last 200, and on an AVX2 stand-in the last 128 cost ULMFiT 1.4 points more than a language model on 10,000
reviews instead of 17,500), then the language model's reading (epochs, then the share of the reviews in an epoch: 3 -> 2 epochs cost
the `cpu-hour` ensemble about 0.3 points; the embedding size, 64 -> 128 worth a whole point, never shrinks), and
last the classifier's unfrozen epochs (3 instead of 4 cost 0.46 points). When the preset leaves time over, it
grows in the order of what helped: language-model epochs (its loss was still falling), then the read length.
Each planned field stays a flag (`overrides` here): a field the user set is never changed, the others plan
around it. If even the smallest plan does not fit, it is kept and `Plan.fits` is False (the run says so).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from awdlstm.recipes import CLAS_PRESETS, LM_PRESETS, ClasRecipe, LMRecipe

MARGIN = 0.10  # plan to 90% of the budget: step times vary ~5-10% over a run (LM epochs of 541-561 s)
# the budget of the README's commands counts the install (pip, from a fresh clone): 33-79 s measured on four
# host kinds (79 s on the AVX2 host), 90 allowed
SETUP_S = {"cpu": 90.0, "cpu-hour": 90.0, "tiny": 0.0}
BUDGET_MIN = {"cpu": 15.0, "cpu-hour": 60.0, "tiny": 2.0}
DIRECTIONS = {"cpu": 1, "cpu-hour": 2, "tiny": 2}  # forward only, or forward + backward side by side
STAGE_OVERHEAD_S = 10.0  # per stage and direction: reading texts, vocab, saving, samples (measured 3-8 s)
# the classifier's 4 stages cost between a head-only step (encoder frozen: forward only) and a full step:
# this share of the difference (freeze_to(-2) backpropagates through the last LSTM layer only: 54 s an epoch
# against 44 s head only and 90 s all layers, AVX2 host, `cpu` preset)
STAGE_SHARE = (0.0, 0.25, 0.6, 1.0)
EXTRA_PASS = 0.8  # one more LM epoch only if each still reads >= 80% of the reviews (else whole epochs)


@dataclass(frozen=True)
class Range:
    """How far a planned field may move from the preset's value: down to `floor`, up to `cap`."""

    lm_passes: tuple[float, float]  # LM epochs over all its reviews (fractions: a share of the reviews)
    max_vocab: tuple[int, int]
    read_len: tuple[int, int]       # the classifier reads each review's last (first) read_len tokens
    last_epochs: tuple[int, int]    # the classifier's unfrozen epochs (its 4th stage)


RANGES = {
    # the read length stops at 200: on the AVX2 stand-in (docs/results.md) the last 128 tokens with the LM on
    # 17,500 reviews gave 87.60%, the last 200 with the LM on 10,000 reviews (perplexity 123 against 84) 89.00%
    "cpu": Range(lm_passes=(0.4, 2.0), max_vocab=(6000, 8000), read_len=(200, 400), last_epochs=(2, 3)),
    "cpu-hour": Range(lm_passes=(1.0, 5.0), max_vocab=(6000, 8000), read_len=(256, 600), last_epochs=(3, 4)),
    "tiny": Range(lm_passes=(1.0, 1.0), max_vocab=(2000, 2000), read_len=(64, 64), last_epochs=(1, 1)),
}
PLANNED = tuple(RANGES)  # the presets a budget sizes (gpu: the book's recipe as it is)


@dataclass(frozen=True)
class Speeds:
    """This host's seconds per token of each kind of work (awdlstm/speed.py measures them)."""

    lm_s_tok: float        # language-model training, at vocab `lm_vocab`
    lm_s_tok_half: float   # the same at vocab lm_vocab // 2
    lm_vocab: int
    lm_eval_s_tok: float   # language-model validation (forward only), at `lm_vocab`
    clas_s_tok: float      # classifier training, all layers
    clas_head_s_tok: float  # classifier training, the encoder frozen
    clas_eval_s_tok: float
    bow_s_tok: float       # bag-of-words features + fit + predictions, per token of the corpus
    precision: str = "fp32"  # what the language model trains in ('auto' resolved on this host)
    jobs: int = 1          # jobs measured side by side

    def lm_at(self, vocab: int) -> float:
        """Seconds per LM training token at `vocab`: the line through the two measurements."""
        slope = max(0.0, (self.lm_s_tok - self.lm_s_tok_half) / (self.lm_vocab - self.lm_vocab // 2))
        return max(self.lm_s_tok + slope * (vocab - self.lm_vocab), 1e-3 * self.lm_s_tok)


@dataclass(eq=False)
class CorpusStats:
    """What the plan needs of the data: the LM's documents and tokens (at the preset's `lm_docs`), and the token
    counts of the classifier's training and validation documents."""

    lm_docs: int
    lm_tokens: int
    clas_train_lengths: np.ndarray
    clas_valid_lengths: np.ndarray
    all_tokens: int  # what the bag-of-words model reads

    def read(self, lengths: np.ndarray, read_len: int) -> int:
        return int(np.minimum(lengths, read_len).sum())


@dataclass
class Plan:
    """The work a run does: every field a flag of scripts/ulmfit.py, and what it is expected to take."""

    preset: str
    minutes: float
    directions: int
    lm_epochs: int
    lm_docs: int        # 0: all
    max_vocab: int
    read_len: int
    clas_epochs: tuple[int, ...]
    bow: bool = True
    precision: str = "auto"
    expected_s: dict = field(default_factory=dict)
    fits: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"plan fields this version does not know: {unknown}")
        d = dict(d)
        d["clas_epochs"] = tuple(d["clas_epochs"])
        return cls(**d)

    def recipes(self) -> tuple[LMRecipe, ClasRecipe]:
        """The preset's two recipes with this plan's fields in them."""
        lm, clas = LM_PRESETS[self.preset], CLAS_PRESETS[self.preset]
        sign = -1 if clas.max_tokens < 0 else 1
        lm = dataclasses.replace(lm, epochs=self.lm_epochs, lm_docs=self.lm_docs, max_vocab=self.max_vocab,
                                 precision=self.precision)
        clas = dataclasses.replace(clas, max_tokens=sign * self.read_len, max_len=self.read_len,
                                   epochs=tuple(self.clas_epochs))
        return lm, clas


def reference(preset: str, minutes: float | None = None) -> Plan:
    """The preset's recipe as a plan (what it was tuned to do), before any sizing."""
    if preset not in PLANNED:
        raise ValueError(f"a time budget sizes the presets {', '.join(PLANNED)}, not {preset!r}")
    lm, clas = LM_PRESETS[preset], CLAS_PRESETS[preset]
    return Plan(preset, BUDGET_MIN[preset] if minutes is None else minutes, DIRECTIONS[preset], lm.epochs,
                lm.lm_docs, lm.max_vocab, abs(clas.max_tokens) or clas.max_len, clas.epochs, precision=lm.precision)


def schedule(passes: float, n_docs: int) -> tuple[int, int]:
    """(epochs, documents per epoch) reading `passes` x `n_docs` reviews: one more epoch only where each epoch
    still reads EXTRA_PASS of the reviews (fresh text teaches a language model more than a repeat)."""
    up = max(1, math.ceil(passes - 1e-9))
    epochs = up if passes / up >= EXTRA_PASS - 1e-9 else max(1, math.floor(passes + 1e-9))
    docs = min(n_docs, max(1, round(passes / epochs * n_docs)))
    return epochs, (0 if docs >= n_docs else docs)


def passes_of(plan: Plan, c: CorpusStats) -> float:
    return plan.lm_epochs * ((plan.lm_docs or c.lm_docs) / c.lm_docs)


def expected_seconds(plan: Plan, s: Speeds, c: CorpusStats, spent_s: float = 0.0) -> dict:
    """Seconds each stage is expected to take under `plan` on a host of speeds `s` (the rule above)."""
    lm, clas = plan.recipes()
    read_docs = (plan.lm_docs or c.lm_docs) / c.lm_docs
    tokens = c.lm_tokens * read_docs
    at_v = s.lm_at(plan.max_vocab)
    lm_epoch = tokens * (1 - lm.valid_pct) * at_v + tokens * lm.valid_pct * s.lm_eval_s_tok * at_v / s.lm_s_tok
    lm_s = (lm.frozen_epochs + lm.epochs) * lm_epoch + STAGE_OVERHEAD_S
    train = c.read(c.clas_train_lengths, plan.read_len)
    valid = c.read(c.clas_valid_lengths, plan.read_len)
    clas_s = STAGE_OVERHEAD_S + 2 * valid * s.clas_eval_s_tok  # the final validation and predictions
    for n, share in zip(clas.epochs, STAGE_SHARE):
        step = s.clas_head_s_tok + share * (s.clas_s_tok - s.clas_head_s_tok)
        clas_s += n * (train * step + valid * s.clas_eval_s_tok)
    bow_s = c.all_tokens * s.bow_s_tok if plan.bow else 0.0
    out = {"setup": SETUP_S.get(plan.preset, 0.0), "spent": spent_s, "lm": lm_s, "clas": clas_s, "bow": bow_s}
    out["total"] = sum(out.values())
    return {k: round(v, 1) for k, v in out.items()}


def make_plan(preset: str, s: Speeds, c: CorpusStats, minutes: float | None = None, spent_s: float = 0.0,
              overrides: dict | None = None) -> Plan:
    """The plan for `preset` within `minutes` (default: the preset's budget) on a host of speeds `s`.

    `overrides` ({field: value}) are fields the user set: kept as given, the rest sized around them."""
    overrides = dict(overrides or {})
    plan = dataclasses.replace(reference(preset, minutes), precision=s.precision)
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(Plan)})
    if unknown:
        raise ValueError(f"not fields of a plan: {unknown}")
    plan = dataclasses.replace(plan, **overrides)
    rng, target = RANGES[preset], plan.minutes * 60 * (1 - MARGIN)

    def cost(p: Plan) -> float:
        return expected_seconds(p, s, c, spent_s)["total"]

    all_docs = LM_PRESETS[preset].lm_docs  # 0 (every review) or the preset's own count (tiny)

    def set_passes(p: Plan, w: float) -> Plan:
        epochs, docs = schedule(w, c.lm_docs)
        return dataclasses.replace(p, lm_epochs=epochs, lm_docs=docs or all_docs)

    free_passes = not ({"lm_epochs", "lm_docs"} & set(overrides))
    last = plan.clas_epochs
    # (field, candidate plans from the largest to the smallest) in the order they shrink
    def down(start: int, floor: int, step: int) -> list[int]:  # start, start - step, ..., floor
        return sorted({*range(start, floor, -step), min(start, floor)}, reverse=True)

    shrink = [("max_vocab", lambda p: [dataclasses.replace(p, max_vocab=v)
                                       for v in down(p.max_vocab, rng.max_vocab[0], 500)]),
              ("read_len", lambda p: [dataclasses.replace(p, read_len=r)
                                      for r in down(p.read_len, rng.read_len[0], 16)]),
              ("lm_epochs", lambda p: [set_passes(p, w / 100) for w in
                                       range(round(passes_of(p, c) * 100), round(rng.lm_passes[0] * 100) - 1, -5)]),
              ("clas_epochs", lambda p: [dataclasses.replace(p, clas_epochs=(*last[:3], n))
                                         for n in range(last[3], min(last[3], rng.last_epochs[0]) - 1, -1)])]
    grow = [("lm_epochs", lambda p: [dataclasses.replace(p, lm_epochs=e, lm_docs=all_docs)
                                     for e in range(math.ceil(rng.lm_passes[1]), p.lm_epochs, -1)]),
            ("read_len", lambda p: [dataclasses.replace(p, read_len=r)
                                    for r in range(rng.read_len[1], p.read_len, -16)])]
    if cost(plan) > target:
        for name, candidates in shrink:
            if name in overrides or (name == "lm_epochs" and not free_passes):
                continue
            options = candidates(plan)
            plan = next((p for p in options if cost(p) <= target), options[-1] if options else plan)
            if cost(plan) <= target:
                break
    else:
        for name, candidates in grow:
            if name in overrides or (name == "lm_epochs" and not free_passes):
                continue
            plan = next((p for p in candidates(plan) if cost(p) <= target), plan)
    expected = expected_seconds(plan, s, c, spent_s)
    return dataclasses.replace(plan, expected_s=expected, fits=expected["total"] <= plan.minutes * 60)


def describe(plan: Plan, c: CorpusStats | None = None) -> str:
    """The plan as the run prints it: what each stage does and its expected minutes."""
    e, m = plan.expected_s, lambda k: f"{plan.expected_s.get(k, 0) / 60:.1f} min"
    docs = f"{plan.lm_docs:,} reviews" if plan.lm_docs else "all reviews"
    both = "forward + backward side by side, one core each" if plan.directions == 2 else "forward"
    lines = [f"plan for --preset {plan.preset} in {plan.minutes:g} minutes ({both}):",
             f"  language model: {plan.lm_epochs} epoch(s) of {docs}, vocab {plan.max_vocab:,}, "
             f"precision {plan.precision}  ~{m('lm')}",
             f"  classifier: the last {plan.read_len} tokens of each review, epochs "
             f"{','.join(map(str, plan.clas_epochs))}  ~{m('clas')}",
             f"  bag-of-words: {'yes' if plan.bow else 'no'}  ~{m('bow')}"]
    if e:
        lines.append(f"  expected in all: {m('total')} (install allowance {m('setup')}, tokenizing and measuring "
                     f"{m('spent')}; planned to {1 - MARGIN:.0%} of the budget)")
    if not plan.fits:
        lines.append("  WARNING: even the smallest plan is expected to take longer than the budget on this host")
    lines.append("  repeat it: " + " ".join(flags(plan)))
    return "\n".join(lines)


def flags(plan: Plan) -> list[str]:
    """The plan as scripts/ulmfit.py flags (every planned field), to repeat it exactly on another host."""
    return ["--preset", plan.preset, "--minutes", f"{plan.minutes:g}", "--directions", str(plan.directions),
            "--lm-epochs", str(plan.lm_epochs), "--lm-docs", str(plan.lm_docs), "--max-vocab", str(plan.max_vocab),
            "--read-len", str(plan.read_len), "--clas-epochs", ",".join(map(str, plan.clas_epochs)),
            "--precision", plan.precision] + ([] if plan.bow else ["--no-bow"])
