"""Answer one prompt with a trained adapter, from the command line (the seed's ``inference.py``).

    python -m course_utils.infer --lora_weights outputs/train/adapter --prompt "한국의 수도는 어디인가요?"
    python -m course_utils.infer --base_model TinyLlama/TinyLlama-1.1B-Chat-v1.0 --lora_weights A --prompt "…" \\
        --do_sample --temperature 0.7 --top_p 0.9 --seed 1

The adapter is loaded on its base as training loaded it (``adapter.load_trained``: nf4 for a QLoRA adapter), the
prompt is written in the template it was trained on, and the answer is generated with the course's decoding
defaults (greedy + repetition penalty 1.1, chosen in notebook 06) unless flags change them: the same call as
notebook 06 (``inference.answer_with_stats``). The answer goes to stdout, one line about it to stderr.
"""
from __future__ import annotations

import argparse
import sys


def decoding_from(args) -> dict:
    """``generate`` keyword arguments from the command line's decoding flags (only the ones given)."""
    decoding = {"do_sample": args.do_sample}
    for key in ("temperature", "top_p", "top_k", "repetition_penalty"):
        if getattr(args, key) is not None:
            decoding[key] = getattr(args, key)
    if not args.do_sample and any(k in decoding for k in ("temperature", "top_p", "top_k")):
        raise ValueError("--temperature, --top_p and --top_k apply to sampling only: add --do_sample")
    return decoding


def main(argv=None) -> None:
    from .notebook import quiet_libraries

    quiet_libraries()
    parser = argparse.ArgumentParser(prog="python -m course_utils.infer", description=(
        "Answer one prompt with a LoRA adapter trained by this course, in the prompt format it was trained on."))
    parser.add_argument("--lora_weights", required=True, help="the adapter folder (with course_adapter.json)")
    parser.add_argument("--prompt", required=True, help="the instruction (the question part of the prompt)")
    parser.add_argument("--input", default="", help="optional input text for the instruction (the input part)")
    parser.add_argument("--base_model", default=None, help="registry key or hub id of the base; must be the adapter's "
                        "(default: read from course_adapter.json)")
    parser.add_argument("--max_new_tokens", type=int, default=128, help="new tokens at most (default 128)")
    parser.add_argument("--do_sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=None, help="sampling temperature (with --do_sample)")
    parser.add_argument("--top_p", type=float, default=None, help="nucleus sampling mass (with --do_sample)")
    parser.add_argument("--top_k", type=int, default=None, help="sample from the k likeliest tokens (with --do_sample)")
    parser.add_argument("--repetition_penalty", type=float, default=None,
                        help="1.0 = none; the course's default is 1.1 (measured in notebook 06)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for sampling (default 0)")
    args = parser.parse_args(argv)
    import torch

    from .adapter import load_trained
    from .inference import answer_with_stats
    from .models import resolve_model

    try:
        if args.max_new_tokens < 1:
            raise ValueError(f"--max_new_tokens must be >= 1, got {args.max_new_tokens}")
        decoding = decoding_from(args)
        model, tokenizer, meta = load_trained(args.lora_weights, resolve_model(args.base_model) if args.base_model else None)
    except (ValueError, OSError) as err:  # AdapterMismatchError, FileNotFoundError, bad flags
        raise SystemExit(f"error: {err}") from None
    torch.manual_seed(args.seed)
    row = answer_with_stats(model, tokenizer, args.prompt, args.input, meta["template"], args.max_new_tokens, **decoding)
    print(row["answer"])
    ending = "EOS에서 멈춤" if row["stopped_at_eos"] else f"max_new_tokens({args.max_new_tokens})에서 잘림"
    print(f"[{meta['base_model']} + {args.lora_weights}: 새 토큰 {row['new_tokens']}개, {ending}, {row['seconds']:.1f} s]",
          file=sys.stderr)


if __name__ == "__main__":
    main()
