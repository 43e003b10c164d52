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

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import adapter_header, load_stored_adapter, stored_adapter_parser, timed_in_turn, write_result  # noqa: E402


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
    args = stored_adapter_parser(__doc__, 2, "timings of each pass; the median is reported").parse_args(argv)

    from course_utils.evaluation import heldout_set
    from course_utils.loss import record_losses, total_loss
    from course_utils.prompts import encode, pad_id
    from course_utils.splits import split_source
    from course_utils.transfer import real_format_file, real_format_records

    profile, adapter_dir, model, tokenizer, meta = load_stored_adapter(args)
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
    parts = {f"{name} {way}": (lambda run=run, examples=examples: run(examples))
             for name, examples in sets.items() for way, run in ways.items()}
    losses, seconds, median = timed_in_turn(parts, args.repeat)
    transfer = ("transfer union", "transfer gathered") if "transfer" in sets else (None, None)
    before = 6 * median["test union"] + (2 * median[transfer[0]] if transfer[0] else 0.0)
    after = 2 * median["test gathered"] + (2 * median[transfer[1]] if transfer[1] else 0.0)
    result = adapter_header(profile, adapter_dir, meta) | {
        "records": {name: len(ex) for name, ex in sets.items()},
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
