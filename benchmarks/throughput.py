"""Benchmark 1: training throughput of the course's path against the trainers learners meet elsewhere.

    .venv/bin/python benchmarks/throughput.py [--profile cpu] [--records 80] [--rounds 2]

Every side trains the same LoRA (the profile's), optimizer, learning-rate schedule and batch size on the same
records: the first ``--records`` encoded training records, one full pass. The sides:
  plain          transformers `Trainer` + peft, `DataCollatorForSeq2Seq` (pad to the longest record of a randomly
                 drawn batch), the model's own causal-LM loss (logits at every position);
  plain+grouped  the same with `train_sampling_strategy="group_by_length"` (less padding, nothing else);
  trl            TRL `SFTTrainer` with its defaults for prompt-completion data (completion-only loss, its own
                 tokenization and collator), `max_length` = the profile's seq_len;
  ours           `course_utils.train`: output layer only at answer positions (length-grouped batches until 2026-12-06,
                 when a resume bug made the course take the random order: course_utils.trainer).
Runs are interleaved (round 1: all four, round 2: all four, ...) so drift in machine speed hits every side.
Reported per run: wall time for the pass; answer tokens per second (the answer tokens of those records,
the same work for every side); useful model FLOP/s as a share of this machine's fp32 matmul peak, measured
in the same run. Useful FLOPs = 4 x (decoder linear parameters) x (non-pad tokens) + 4 x d_model x vocab x
(answer tokens): work thrown away, like logits of prompt tokens, is not useful. And the held-out answer loss
after the pass (`course_utils.loss.heldout_loss`, the profile's held-out records).
Decision rule (issue 16): if TRL's SFTTrainer is within 10 % of ours in answer tokens/s on the cpu profile, the
course trains with it; otherwise the course keeps its own path. Writes benchmarks/results/throughput_<date>.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import machine_info, plain_batches, write_result  # noqa: E402

SIDES = ("plain", "plain+grouped", "trl", "ours")


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


def run_once(side: str, profile, records, train_set, heldout, tokenizer) -> dict:
    """One pass over ``records`` (``train_set`` = their encoding) on one side; wall time and held-out loss after."""
    from transformers import Trainer, TrainingArguments, set_seed

    from course_utils.loading import load_profile_model
    from course_utils.lora import attach_lora, lora_config
    from course_utils.loss import heldout_loss
    from course_utils.prompts import collate, format_record, pad_id
    from course_utils.trainer import AnswerOnlyTrainer

    t = profile.train
    set_seed(t.seed)
    common = dict(per_device_train_batch_size=profile.batch_size, gradient_accumulation_steps=profile.grad_accum,
                  learning_rate=t.learning_rate, warmup_steps=t.warmup_steps, lr_scheduler_type=t.lr_scheduler,
                  num_train_epochs=1, optim=profile.optimizer, save_strategy="no", logging_steps=10**6, report_to=[],
                  seed=t.seed, data_seed=t.seed, use_cpu=not torch.cuda.is_available(), disable_tqdm=True)
    base = load_profile_model(profile)
    with tempfile.TemporaryDirectory() as tmp:
        if side == "trl":
            from datasets import Dataset
            from trl import SFTConfig, SFTTrainer

            rows = [dict(zip(("prompt", "completion"), format_record(r, tokenizer, profile.data.template), strict=True))
                    for r in records]
            trainer = SFTTrainer(model=base, args=SFTConfig(output_dir=tmp, max_length=profile.seq_len, **common),
                                 train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                                 peft_config=lora_config(profile.lora, base))
        else:
            model = attach_lora(base, profile.lora)
            model.config.use_cache = False
            if side == "ours":
                args = TrainingArguments(output_dir=tmp, train_sampling_strategy="group_by_length",
                                         remove_unused_columns=False, **common)
                trainer = AnswerOnlyTrainer(model=model, args=args, train_dataset=train_set, pad_id=pad_id(tokenizer),
                                            data_collator=lambda f: collate(f, pad_id(tokenizer)))
            else:
                rows, collator = plain_batches(train_set, tokenizer)
                grouped = {"train_sampling_strategy": "group_by_length"} if side == "plain+grouped" else {}
                args = TrainingArguments(output_dir=tmp, remove_unused_columns=False, **grouped, **common)
                trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collator)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        model = trainer.model
    return {"side": side, "seconds": seconds, "steps": trainer.state.global_step,
            "heldout_loss_after": heldout_loss(model, heldout, pad_id(tokenizer), t.eval_batch_size), "model": model}


def main(argv=None) -> dict:
    from course_utils.loading import load_tokenizer
    from course_utils.loss import answer_token_count
    from course_utils.notebook import quiet_libraries
    from course_utils.profiles import PROFILES_FILE, get_profile
    from course_utils.prompts import encode, prepare_data
    from course_utils.splits import split_source

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--profiles", default=str(PROFILES_FILE), help="a profiles YAML file (default: the course's)")
    parser.add_argument("--records", type=int, default=80, help="training records, one pass (same for every side)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the four sides")
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    quiet_libraries()
    profile = get_profile(args.profile, args.profiles)
    tokenizer = load_tokenizer(profile.model)
    _, _, heldout, _ = prepare_data(profile, tokenizer)  # the test split: its loss is only reported
    d = profile.data
    records = split_source(d.source, profile.train.heldout_records, profile.train.seed, d.on_invalid,
                           d.max_records)[0]
    records = [r for r in records if encode(r, tokenizer)["length"] <= profile.seq_len][: args.records]
    train_set = [encode(r, tokenizer, profile.seq_len, d.template) for r in records]
    real = sum(len(e["input_ids"]) for e in train_set)
    answer = sum(answer_token_count(e) for e in train_set)
    peak = matmul_peak_flops()
    runs = []
    for rnd in range(args.rounds):
        for side in args.sides:
            r = run_once(side, profile, records, train_set, heldout, tokenizer)
            model = r.pop("model")
            flops = useful_flops(model, real, answer)
            del model
            r.update(round=rnd, records=len(records), real_tokens=real, answer_tokens=answer,
                     answer_tokens_per_s=answer / r["seconds"], share_of_peak=flops / r["seconds"] / peak)
            runs.append(r)
            print(f"round {rnd} {side:13s} {r['seconds']:6.1f} s  {r['answer_tokens_per_s']:6.1f} answer tok/s  "
                  f"{r['share_of_peak'] * 100:5.1f} % of peak  held-out {r['heldout_loss_after']:.4f}", flush=True)
    median = {side: statistics.median(r["answer_tokens_per_s"] for r in runs if r["side"] == side)
              for side in args.sides}
    summary = {"profile": profile.name, "model": profile.model, "records": len(records), "batch_size": profile.batch_size,
               "real_tokens": real, "answer_tokens": answer, "matmul_peak_flops": peak, "median_answer_tokens_per_s":
               median, "runs": runs}
    if "trl" in median and "ours" in median:
        summary["trl_over_ours"] = median["trl"] / median["ours"]
        summary["decision"] = ("train with TRL SFTTrainer (within 10 % of ours)" if summary["trl_over_ours"] >= 0.9
                               else "keep the course's Trainer path (TRL SFTTrainer is more than 10 % slower)")
    print(f"\nfp32 matmul peak here: {peak / 1e9:.1f} GFLOP/s ({torch.get_num_threads()} threads); "
          f"{len(records)} records, {answer} answer tokens, one pass")
    print("| side | wall time (s, per round) | answer tokens/s (median) | share of matmul peak (median) | held-out loss after |")
    print("|---|---|---|---|---|")
    for side in args.sides:
        mine = [r for r in runs if r["side"] == side]
        walls = " / ".join(f"{r['seconds']:.1f}" for r in mine)
        losses = " / ".join(f"{r['heldout_loss_after']:.4f}" for r in mine)
        share = statistics.median(r["share_of_peak"] for r in mine) * 100
        print(f"| {side} | {walls} | {median[side]:.1f} | {share:.1f} % | {losses} |")
    if "decision" in summary:
        print(f"TRL / ours: {summary['trl_over_ours']:.2f}x -> {summary['decision']}")
    write_result("throughput", {**machine_info(), **summary}, args.out)
    return summary


if __name__ == "__main__":
    main()
