"""Benchmark 1: training throughput of the course's path against a plain Trainer + peft recipe.

    .venv/bin/python benchmarks/throughput.py [--profile cpu] [--steps 20] [--pairs 3]

Both sides: the same model, LoRA config, data (the profile's encoded training records), optimizer,
learning-rate schedule, batch size and number of optimizer steps. They differ only where the course
does something on purpose:
  plain  transformers' default causal-LM loss (logits at every position), `DataCollatorForSeq2Seq`
         padding to the longest record in a randomly drawn batch;
  ours   `course_utils.train`: batches grouped by length, output layer applied only at answer
         positions (`answer_loss_sum`).
Runs are interleaved (plain, ours, plain, ours, ...) so drift in machine speed hits both sides.
Reported per run: real answer tokens/s (labels != -100, pads never counted) and useful model
FLOP/s as a share of this machine's fp32 matmul peak, measured in the same run. Useful FLOPs per
step = 4 x (decoder linear parameters) x (non-pad tokens) + 4 x d_model x vocab x (answer tokens):
forward 2 + backward-to-input 2 per weight; frozen base weights need no weight gradient; only
answer positions need logits. Both sides are scored with the same count, so the share is a fair
efficiency measure (work that is thrown away, like logits of prompt tokens, is not useful).
Writes benchmarks/results/throughput_<date>.json and prints a table.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import machine_info, plain_batches, write_result  # noqa: E402


def matmul_peak_flops(n: int = 1024, seconds: float = 2.0) -> float:
    """Best fp32 matmul FLOP/s over repeated n x n x n products (this machine, this thread count)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def useful_flops(model, real_tokens: int, answer_tokens: int) -> float:
    from course_utils.models import count_params

    base = model.get_base_model()
    counts = count_params(base)
    body = counts.linear  # decoder projections (an untied output layer is counted apart, as lm_head)
    d, vocab = base.get_output_embeddings().weight.shape[1], base.config.vocab_size
    return 4.0 * body * real_tokens + 4.0 * d * vocab * answer_tokens


def _counting(collator, counter):
    def collate_and_count(features):
        batch = collator(features)
        counter["real"] += int(batch["attention_mask"].sum())
        counter["answer"] += int((batch["labels"][:, 1:] != -100).sum())
        return batch
    return collate_and_count


def run_once(side: str, profile, train_set, tokenizer, steps: int) -> dict:
    from transformers import Trainer, TrainingArguments, set_seed

    from course_utils.loading import load_profile_model
    from course_utils.lora import attach_lora
    from course_utils.prompts import collate, pad_id
    from course_utils.train import _trainer_class, training_arguments

    set_seed(profile.train.seed)
    model = attach_lora(load_profile_model(profile), profile.lora)
    model.config.use_cache = False
    counter = {"real": 0, "answer": 0}
    with tempfile.TemporaryDirectory() as tmp:
        if side == "ours":
            args = training_arguments(profile, Path(tmp), steps)
            args.disable_tqdm = True
            trainer = _trainer_class()(model=model, args=args, train_dataset=train_set,
                                       data_collator=_counting(lambda f: collate(f, pad_id(tokenizer)), counter))
        else:
            t = profile.train
            args = TrainingArguments(
                output_dir=tmp, per_device_train_batch_size=profile.batch_size,
                gradient_accumulation_steps=profile.grad_accum, learning_rate=t.learning_rate,
                warmup_steps=t.warmup_steps, lr_scheduler_type=t.lr_scheduler, max_steps=steps,
                optim=profile.optimizer, save_strategy="no", logging_steps=10**6, report_to=[], seed=t.seed,
                data_seed=t.seed, use_cpu=not torch.cuda.is_available(), disable_tqdm=True,
                remove_unused_columns=False)
            plain, collator = plain_batches(train_set, tokenizer)
            trainer = Trainer(model=model, args=args, train_dataset=plain, data_collator=_counting(collator, counter))
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return {"side": side, "seconds": seconds, "real_tokens": counter["real"], "answer_tokens": counter["answer"],
            "answer_tokens_per_s": counter["answer"] / seconds,
            "useful_flops_per_s": useful_flops(model, counter["real"], counter["answer"]) / seconds}


def main(argv=None) -> dict:
    from course_utils.loading import load_tokenizer
    from course_utils.notebook import quiet_libraries
    from course_utils.profiles import get_profile
    from course_utils.prompts import prepare_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per run")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved (plain, ours) pairs")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    quiet_libraries()
    profile = get_profile(args.profile)
    profile = dataclasses.replace(profile, train=dataclasses.replace(
        profile.train, save_steps=10**6, logging_steps=10**6))
    tokenizer = load_tokenizer(profile.model)
    train_set, _, _ = prepare_data(profile, tokenizer)
    peak = matmul_peak_flops()
    runs = []
    for pair in range(args.pairs):
        for side in ("plain", "ours"):
            r = run_once(side, profile, train_set, tokenizer, args.steps)
            r["pair"] = pair
            r["share_of_peak"] = r["useful_flops_per_s"] / peak
            runs.append(r)
            print(f"pair {pair} {side:5s} {r['seconds']:6.1f} s  {r['answer_tokens_per_s']:7.1f} answer tok/s  "
                  f"{r['share_of_peak'] * 100:5.1f} % of peak", flush=True)
    ratios = [o["answer_tokens_per_s"] / p["answer_tokens_per_s"]
              for p, o in zip(runs[0::2], runs[1::2], strict=True)]
    summary = {"profile": profile.name, "model": profile.model, "steps": args.steps, "batch_size": profile.batch_size,
               "matmul_peak_flops": peak, "ratio_ours_over_plain": {
                   "min": min(ratios), "median": statistics.median(ratios), "max": max(ratios)}, "runs": runs}
    print(f"\nfp32 matmul peak here: {peak / 1e9:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    print("| side | answer tokens/s (median) | useful FLOP/s share of peak (median) |")
    print("|---|---|---|")
    for side in ("plain", "ours"):
        mine = [r for r in runs if r["side"] == side]
        print(f"| {side} | {statistics.median(r['answer_tokens_per_s'] for r in mine):.1f} | "
              f"{statistics.median(r['share_of_peak'] for r in mine) * 100:.1f} % |")
    print(f"ratio ours/plain: min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x")
    write_result("throughput", {**machine_info(), **summary}, args.out)
    return summary


if __name__ == "__main__":
    main()
