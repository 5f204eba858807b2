"""Stage 3 of ULMFiT: train a sentiment classifier on top of the fine-tuned encoder (chapter 10).

    python scripts/train_classifier.py                       # newest LM run, canonical IMDb split
    python scripts/train_classifier.py --encoder runs/lm-20261125-221500 --train-docs 5000 --valid-docs 1000
    torchrun --nproc_per_node 4 scripts/train_classifier.py --preset gpu   # 4 GPUs, each a quarter of every batch

The classifier uses the language model's vocab and encoder, reads the labelled texts (the embedded IMDb
reviews: 20,000 train / 5,000 valid; or --csv / --folder), and trains with gradual unfreezing and
discriminative learning rates as the book: fit_one_cycle(1, 2e-2); freeze_to(-2); fit_one_cycle(1,
slice(1e-2/2.6**4, 1e-2)); freeze_to(-3); fit_one_cycle(1, slice(5e-3/2.6**4, 5e-3)); unfreeze;
fit_one_cycle(2, slice(1e-3/2.6**4, 1e-3)). Saves the classifier (weights + JSON config + vocab) and the
label vocab into the run folder and reports the final validation accuracy.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

import pipeline as P
import resume as R
from awdlstm import TextClassifier, clas_config, load_encoder, save_model
from awdlstm import distributed as D
from awdlstm.checkpoint import read_meta
from awdlstm.model import AWDLSTMConfig
from awdlstm.train import Learner, TrainConfig
from awdlstm.train_checkpoint import set_seed
from data import ClasLoader, LabelVocab
from tokenizers.vocab import Vocab


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = P.OneLineParser(description=__doc__, prog="train_classifier.py")
    P.add_common_flags(ap, P.CLAS_PRESETS)
    ap.add_argument("--encoder", default=None,
                    help="finetune_lm.py's run folder (encoder.pt + vocab.json); default: the newest runs/lm-*")
    R.add_resume_flag(ap)
    P.add_source_flags(ap)
    P.add_recipe_flags(ap, P.ClasRecipe, P.CLAS_PRESETS)
    return ap.parse_args(argv)


def split_docs(texts, r: P.ClasRecipe, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) document indices: the source's own split or a random one, then subsampled."""
    if texts.is_valid is not None:
        flags = np.asarray(texts.is_valid)
        train, valid = np.flatnonzero(~flags), np.flatnonzero(flags)
    else:
        train, valid = P.random_split(len(texts), r.valid_pct, rng)
    if len(train) == 0 or len(valid) == 0:
        raise ValueError(f"the split left {len(train)} training and {len(valid)} validation documents")
    return P.sample(train, r.train_docs, rng), P.sample(valid, r.valid_docs, rng)


def main(argv=None) -> None:
    args, saved = R.resume_args(parse_args(argv), "train_classifier")  # --resume: the run's own flags
    device = D.setup(P.resolve_device(args.device, args.threads))  # this rank's device under torchrun
    preset, r = P.recipe_from_args(args, P.CLAS_PRESETS, device)
    lm_run = P.newest_run("lm", "encoder.pt") if args.encoder is None else args.encoder
    enc_path = P.run_file(lm_run, "encoder.pt")
    vocab = Vocab.load(P.run_file(lm_run, "vocab.json"))
    enc_cfg = AWDLSTMConfig.from_dict(read_meta(enc_path)["config"])
    backwards = bool(P.read_config(lm_run).get("backwards"))
    config = {"stage": "train_classifier", "preset": preset, "recipe": dataclasses.asdict(r), "args": vars(args),
              "encoder": str(enc_path), "backwards": backwards, "device": str(device), "torch": torch.__version__,
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    run_dir, resume_from, config = R.start_run(args, saved, "clas", "classifier.pt", config)
    with P.logged(run_dir) if D.is_main() else D.silenced():  # only rank 0 prints and writes
        print(f"run folder: {run_dir}  (preset {preset}, device {device}, encoder {enc_path})")
        set_seed(args.seed)
        rng = np.random.default_rng(args.seed)
        t0 = time.time()
        texts = P.read_source(args, labelled=True)
        train_idx, valid_idx = split_docs(texts, r, rng)
        corpus = P.tokenize_texts(texts.texts, args.cache_dir, args.quiet or not D.is_main())
        labels = LabelVocab.build([texts.labels[i] for i in train_idx])
        train = corpus.subset(train_idx, r.max_tokens).numericalize(vocab)
        valid = corpus.subset(valid_idx, r.max_tokens).numericalize(vocab)
        shard = {"rank": D.rank(), "world_size": D.world_size()}  # each rank reads rows rank::world_size
        train_dl = ClasLoader(train, [texts.labels[i] for i in train_idx], bs=r.bs, seq_len=r.seq_len, shuffle=True,
                              backwards=backwards, seed=args.seed, label_vocab=labels, **shard)
        valid_dl = ClasLoader(valid, [texts.labels[i] for i in valid_idx], bs=r.bs, seq_len=r.seq_len,
                              shuffle=False, backwards=backwards, label_vocab=labels, **shard)
        print(f"{len(train_idx)} training and {len(valid_idx)} validation documents, labels {labels.itos}; "
              f"data ready in {time.time() - t0:.1f}s")

        cfg = clas_config(emb_sz=enc_cfg.emb_sz, n_hid=enc_cfg.n_hid, n_layers=enc_cfg.n_layers,
                          drop_mult=r.drop_mult)
        model = TextClassifier(len(vocab), len(labels), cfg, bptt=r.seq_len, max_len=r.max_len)
        load_encoder(model, enc_path, vocab)
        learn = Learner(model, train_dl, valid_dl, run_dir=run_dir, metrics=("accuracy",),
                        cfg=TrainConfig(wd=r.wd, precision=r.precision, seed=args.seed, progress=not args.quiet),
                        device=device)
        print(f"precision: {learn.precision.name}")
        t1 = time.time()
        n_stages = len(r.epochs)
        stages = [(0 if i == n_stages - 1 and n_stages > 1 else -(i + 1),  # the book's gradual unfreezing
                   n_epoch, lr if i == 0 else slice(lr / r.lr_mult, lr))
                  for i, (n_epoch, lr) in enumerate(zip(r.epochs, r.lrs, strict=True))]
        R.run_fits(learn, stages, resume=resume_from)
        train_time = time.time() - t1
        final = learn.validate()  # every rank takes part: the metrics are summed over ranks
        if not D.is_main():
            D.finish()
            return

        save_model(learn.model, run_dir / "classifier.pt", vocab)
        vocab.save(run_dir / "vocab.json")
        labels.save(run_dir / "labels.json")
        config["results"] = {"accuracy": final["accuracy"], "valid_loss": final["valid_loss"],
                             "train_time_s": round(train_time, 1), "total_time_s": round(time.time() - t0, 1),
                             "n_train": len(train_idx), "n_valid": len(valid_idx), "precision": learn.precision.name}
        P.save_config(run_dir, config)
        (run_dir / "last.pt").unlink(missing_ok=True)  # the fits are complete: classifier.pt holds the weights
        print(f"final validation accuracy: {final['accuracy']:.4f} on {len(valid_idx)} documents "
              f"({train_time:.0f}s training)")
        print(f"saved {run_dir / 'classifier.pt'}, vocab.json and labels.json")
    D.finish()


if __name__ == "__main__":
    P.main_guard(main)
