"""Generate text with a fine-tuned language model (chapter 10: `learn.predict(TEXT, N_WORDS, temperature=0.75)`).

    python scripts/generate.py "I liked this movie because" --n-words 40 --n 2
    python scripts/generate.py --model runs/lm-20261125-221500 --temperature 0.5 --top-k 40 "This film"

A backward model (finetune_lm.py --backwards) writes the text that comes before the prompt, ending with it.
"""
from __future__ import annotations

import torch

from awdlstm import LanguageModel, cli, generate, load_model
from awdlstm.runs import newest_run, read_config, resolve_device, run_file


def main(argv: list[str] | None = None) -> None:
    ap = cli.OneLineParser(description=__doc__, prog="generate.py")
    ap.add_argument("prompt", nargs="?", default="I liked this movie because", help="the start of the text")
    ap.add_argument("--model", default=None, help="finetune_lm.py's run folder (default: the newest runs/lm-*)")
    ap.add_argument("--n-words", type=cli.checked(int, "n_words", "nonneg"), default=40, help="words to add")
    ap.add_argument("--n", type=cli.checked(int, "n", "nonneg"), default=2, help="how many texts")
    ap.add_argument("--temperature", type=cli.checked(float, "temperature", "nonneg"), default=0.75,
                    help="sampling temperature (0: always the likeliest)")
    ap.add_argument("--top-k", type=cli.checked(int, "top_k", "pos"), default=None,
                    help="sample among the k likeliest words only")
    ap.add_argument("--top-p", type=cli.checked(float, "top_p", "pos"), default=None,
                    help="nucleus sampling: the likeliest words up to this mass")
    ap.add_argument("--seed", type=cli.checked(int, "seed", "nonneg"), default=None,
                    help="random seed (repeatable texts)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    run = newest_run("lm", "lm.pt") if args.model is None else args.model
    model, itos = load_model(run_file(run, "lm.pt"))
    if not isinstance(model, LanguageModel) or itos is None:
        raise ValueError(f"{run}/lm.pt is not a language model saved with its vocab")
    model.to(device)
    backwards = bool(read_config(run).get("backwards"))  # a backward model writes what comes before the prompt
    for i in range(args.n):
        with torch.no_grad():
            print(generate(model, itos, args.prompt, args.n_words, temperature=args.temperature,
                           seed=None if args.seed is None else args.seed + i, top_k=args.top_k, top_p=args.top_p,
                           backwards=backwards))


if __name__ == "__main__":
    cli.main_guard(main)
