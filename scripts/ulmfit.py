"""ULMFiT in one command, sized to a time budget on this machine: both stages, both directions, bag-of-words, ensemble.

    python scripts/ulmfit.py                          # --preset cpu: 15 minutes in all, install included
    python scripts/ulmfit.py --preset cpu-hour        # an hour: forward + backward side by side, one core each
    python scripts/ulmfit.py --preset cpu --minutes 30
    python scripts/ulmfit.py --plan runs/ulmfit-20261207-101500/config.json   # repeat a recorded plan exactly

It measures this host first (a few training steps of each model, in the precision the run will use), sizes the
work to the budget (awdlstm/budget.py explains the rule: what shrinks first on a slow host, what grows on a fast
one), prints the plan with its expected minutes and the flags that repeat it, then trains, and ends with each
member's validation accuracy, `final validation accuracy:` (ULMFiT alone) and `ensemble validation accuracy:`
(ULMFiT with the bag-of-words member, equal weights). Every planned field is a flag below: a field you set is
kept, the others are sized around it. All of it is `awdlstm.pipeline.run_ulmfit`.
"""
from __future__ import annotations

from awdlstm import budget, cli
from awdlstm.pipeline import run_ulmfit


def main(argv: list[str] | None = None) -> None:
    ap = cli.OneLineParser(description=__doc__, prog="ulmfit.py")
    ap.add_argument("--preset", choices=budget.PLANNED, default="cpu", help="what to size (default: cpu)")
    ap.add_argument("--minutes", type=cli.checked(float, "minutes", "pos"), default=None,
                    help="the budget in minutes, install included (default: cpu 15, cpu-hour 60, tiny 2)")
    ap.add_argument("--plan", default=None, metavar="CONFIG",
                    help="repeat the plan recorded in an earlier run's config.json (no measuring)")
    ap.add_argument("--seed", type=cli.checked(int, "seed", "nonneg"), default=42, help="random seed")
    ap.add_argument("--run-dir", default=None, help="run folder (default: runs/ulmfit-<date>-<time>)")
    ap.add_argument("--threads", type=cli.checked(int, "threads", "nonneg"), default=0,
                    help="CPU threads with one direction (0: torch's default); two directions use one each")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--dry-run", action="store_true", help="measure and print the plan, train nothing")
    g = ap.add_argument_group("the plan (each flag fixes that field; the others are sized around it)")
    g.add_argument("--directions", type=int, choices=(1, 2), default=None, help="1: forward; 2: + backward")
    g.add_argument("--lm-epochs", type=cli.checked(int, "lm_epochs", "pos"), default=None,
                   help="language-model epochs")
    g.add_argument("--lm-docs", type=cli.checked(int, "lm_docs", "nonneg"), default=None,
                   help="reviews the language model reads (0: all)")
    g.add_argument("--max-vocab", type=cli.checked(int, "max_vocab", "pos"), default=None, help="vocab size")
    g.add_argument("--read-len", type=cli.checked(int, "read_len", "pos"), default=None,
                   help="the classifier reads the last READ_LEN tokens of each review")
    g.add_argument("--clas-epochs", type=lambda s: tuple(int(v) for v in s.split(",")), default=None,
                   help="the classifier's epochs of its 4 stages, e.g. 1,1,0,3")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=None,
                   help="the language model's precision")
    g.add_argument("--no-bow", dest="bow", action="store_false", default=None,
                   help="no bag-of-words member")
    cli.add_source_flags(ap)
    args = ap.parse_args(argv)
    if args.clas_epochs is not None and len(args.clas_epochs) != 4:
        ap.error("--clas-epochs needs 4 values, one per stage of gradual unfreezing")
    fields = ("directions", "lm_epochs", "lm_docs", "max_vocab", "read_len", "clas_epochs", "precision", "bow")
    overrides = {k: getattr(args, k) for k in fields if getattr(args, k) is not None}
    run_ulmfit(args.preset, args.minutes, args.run_dir, source=cli.source_from_args(args), seed=args.seed,
               overrides=overrides, plan_file=args.plan, threads=args.threads, cache_dir=args.cache_dir,
               progress=not args.quiet, dry_run=args.dry_run)


if __name__ == "__main__":
    cli.main_guard(main)
