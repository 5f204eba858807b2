"""Stage 3 of ULMFiT: train a sentiment classifier on top of the fine-tuned encoder (chapter 10).

    python scripts/train_classifier.py                       # newest LM run, canonical IMDb split
    python scripts/train_classifier.py --encoder runs/lm-20261125-221500 --train-docs 5000 --valid-docs 1000
    torchrun --nproc_per_node 4 scripts/train_classifier.py --preset gpu   # 4 GPUs, each a quarter of every batch

The classifier uses the language model's vocab and encoder, reads the labelled texts (the embedded IMDb
reviews: 20,000 train / 5,000 valid; or --csv / --folder), and trains with gradual unfreezing and
discriminative learning rates as the book: fit_one_cycle(1, 2e-2); freeze_to(-2); fit_one_cycle(1,
slice(1e-2/2.6**4, 1e-2)); freeze_to(-3); fit_one_cycle(1, slice(5e-3/2.6**4, 5e-3)); unfreeze;
fit_one_cycle(2, slice(1e-3/2.6**4, 1e-3)) (`awdlstm.ulmfit.gradual_unfreeze`). Saves the classifier
(weights + JSON config + vocab) and the label vocab into the run folder and reports the final validation
accuracy. All of it is `awdlstm.ulmfit.train_classifier`.
"""
from __future__ import annotations

from awdlstm import cli, ulmfit
from awdlstm import distributed as D
from awdlstm.recipes import CLAS_PRESETS, ClasRecipe
from awdlstm.runs import newest_run, resolve_device, run_file


def main(argv: list[str] | None = None) -> None:
    ap = cli.OneLineParser(description=__doc__, prog="train_classifier.py")
    cli.add_common_flags(ap, CLAS_PRESETS)
    ap.add_argument("--encoder", default=None,
                    help="finetune_lm.py's run folder (encoder.pt + vocab.json); default: the newest runs/lm-*")
    cli.add_source_flags(ap)
    cli.add_recipe_flags(ap, ClasRecipe, CLAS_PRESETS)
    args = ap.parse_args(argv)
    device = D.setup(resolve_device(args.device, args.threads))  # this rank's device under torchrun
    if args.resume:
        ulmfit.resume_run(args.resume, "train_classifier", device, progress=not args.quiet)
    else:
        preset, recipe = cli.recipe_from_args(args, CLAS_PRESETS, device.type)
        source = cli.source_from_args(args)
        encoder = args.encoder or newest_run("lm", "encoder.pt")
        run_file(encoder, "encoder.pt")  # a wrong --encoder is said before the texts are read
        ulmfit.train_classifier(source.read(labelled=True), encoder, recipe, args.run_dir, device, seed=args.seed,
                                cache_dir=args.cache_dir, progress=not args.quiet,
                                settings={"preset": preset, "source": vars(source)})
    D.finish()


if __name__ == "__main__":
    cli.main_guard(main)
