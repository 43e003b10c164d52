"""Benchmark 12: the passes over held-out records that 05 makes besides training, before and after this change.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/measuring_passes.py [--profile cpu] [--adapter DIR] [--repeat 2]

05 scores its 48 test records and, for transfer, 100 real-format records. Until 2026-12-07 it made six passes over
the test records (the loss before training at the start and again at the resume, after the stop at step 32, after
training, and the report's per-kind loss with the adapter off and on) and two over the transfer records, each through
the row union of answer positions (``loss.answer_loss_sum``, as training). Now it makes two test passes (before,
after; the report adds the per-record losses up) and the same two transfer passes, each through the gathered answer
positions (``loss.record_losses``).

One process, the stored 05 adapter (``notebooks/outputs/05_training/<profile>/adapter``), adapter on. Each pass
(union / gathered, test / transfer) is timed ``--repeat`` times in turn, so a machine that slows down slows both
sides; the medians give the two totals. The losses of both ways are compared (they must agree). Writes
benchmarks/results/measuring_passes_<profile>_<date>.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_result  # noqa: E402


@torch.no_grad()
def union_loss(model, examples: list[dict], pad: int, batch_size: int) -> float:
    """The held-out loss as 05 measured it before this change: ``answer_loss_sum`` over ``length_batches``."""
    from course_utils.loss import answer_loss_sum, length_batches
    from course_utils.prompts import collate

    model.eval()
    total, count = 0.0, 0
    for indices in length_batches([len(e["input_ids"]) for e in examples], batch_size):
        loss, n = answer_loss_sum(model, collate([examples[i] for i in indices], pad))
        total, count = total + float(loss), count + n
    return total / count


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--adapter", type=Path)
    parser.add_argument("--repeat", type=int, default=2, help="timings of each pass; the median is reported")
    parser.add_argument("--out", type=Path, default=None, help="result file (default: benchmarks/results/...)")
    args = parser.parse_args(argv)

    from benchmarks.course_runtime import source_commit
    from course_utils.adapter import load_trained
    from course_utils.evaluation import adapter_digest, heldout_set
    from course_utils.loss import record_losses, total_loss
    from course_utils.profiles import get_profile
    from course_utils.prompts import encode, pad_id
    from course_utils.splits import split_source
    from course_utils.transfer import real_format_file, real_format_records

    profile = get_profile(args.profile)
    adapter_dir = args.adapter or ROOT / "notebooks" / "outputs" / "05_training" / profile.name / "adapter"
    model, tokenizer, meta = load_trained(adapter_dir, profile.model)
    d, t = profile.data, profile.train
    pad = pad_id(tokenizer)
    sets = {"test": heldout_set(profile, tokenizer, "test")[1]}
    path = real_format_file()
    if path is not None:
        training = split_source(d.source, t.heldout_records, t.seed, d.on_invalid, d.max_records)[0]
        records = real_format_records(training, path, limit=t.transfer_records)
        sets["transfer"] = [encode(r, tokenizer, profile.seq_len, d.template) for r in records]
    ways = {"union": lambda ex: union_loss(model, ex, pad, t.eval_batch_size),
            "gathered": lambda ex: total_loss(record_losses(model, ex, pad, t.eval_batch_size))}
    seconds = {f"{name} {way}": [] for name in sets for way in ways}
    losses = {}
    for _ in range(args.repeat):
        for name, examples in sets.items():
            for way, run in ways.items():
                start = time.perf_counter()
                losses[f"{name} {way}"] = run(examples)
                seconds[f"{name} {way}"].append(time.perf_counter() - start)
    median = {part: statistics.median(s) for part, s in seconds.items()}
    transfer = ("transfer union", "transfer gathered") if "transfer" in sets else (None, None)
    before = 6 * median["test union"] + (2 * median[transfer[0]] if transfer[0] else 0.0)
    after = 2 * median["test gathered"] + (2 * median[transfer[1]] if transfer[1] else 0.0)
    result = machine_info() | source_commit() | {
        "profile": profile.name, "model": profile.model, "adapter_sha256": adapter_digest(adapter_dir),
        "adapter_global_step": meta.get("global_step"), "records": {name: len(ex) for name, ex in sets.items()},
        "eval_batch_size": t.eval_batch_size, "repeat": args.repeat, "seconds": seconds, "median_seconds": median,
        "losses": losses, "passes_before": {"test": 6, "transfer": 2}, "passes_after": {"test": 2, "transfer": 2},
        "05_measuring_before_seconds": before, "05_measuring_after_seconds": after, "saved_share": 1 - after / before}
    for part, s in median.items():
        print(f"{part}: {s:.1f} s (손실 {losses[part]:.6f})")
    print(f"05의 손실 측정: {before:.1f} s -> {after:.1f} s ({result['saved_share']:.0%} 줄어듦)")
    write_result(f"measuring_passes_{profile.name}", result, args.out)
    return result


if __name__ == "__main__":
    main()
