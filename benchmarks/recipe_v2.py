"""Benchmark 10: the cpu recipe re-tuned for the bundled v2 data, chosen on v2's dev split (issue 44, item 3).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/recipe_v2.py [--profile cpu] [--steps 110] [--keep DIR]

Each candidate trains the profile's LoRA on v2's training split through the course's own ``train`` (what 05 runs),
with its held-out evaluations on *all* of v2's dev records (128) and none on test: the choice reads dev only, and 05
later reports test. The candidates differ in learning rate and packing; each gets the same compute: the token slots
(padded rows, or packed rows) of ``--steps`` unpacked steps, counted on this data before any training (05 must stay
within 20 minutes on a 2-core CPU, and its evaluation takes part of that: 220 unpacked v2 steps took 1,193 s last
stop). Each run's training seconds are measured and recorded. Rule: the lowest best-checkpoint dev loss among
candidates whose training took at most 1.3 x the fastest one's (the spread of timings on these machines).
Writes benchmarks/results/recipe_v2_<profile>_<date>[_label].json.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_result  # noqa: E402

V2 = "bundled:ko_instructions_v2.jsonl"
DEV_RECORDS = 128  # all of v2's dev split
TIME_SLACK = 1.3
CANDIDATES = [  # (name, learning rate, packing)
    ("unpacked, lr 5e-4", 5.0e-4, False),
    ("unpacked, lr 1e-3", 1.0e-3, False),
    ("packed, lr 5e-4", 5.0e-4, True),
    ("packed, lr 1e-3", 1.0e-3, True),
]


def slots_per_step(train_set: list[dict], batch_size: int, packing: bool, seed: int) -> float:
    """Token slots one optimizer step fills, averaged over a shuffled epoch: padded to the longest row of each batch
    (what the collator does); for packed rows the same, over rows."""
    lengths = [len(e["input_ids"]) for e in train_set]
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    batches = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    return sum(len(b) * max(lengths[i] for i in b) for b in batches) / len(batches)


def dev_losses(log_history: list[dict]) -> list[tuple[int, float]]:
    return [(int(e["step"]), float(e["eval_loss"])) for e in log_history if "eval_loss" in e]


def choose(rows: list[dict]) -> dict | None:
    """The lowest best dev loss among candidates that trained within ``TIME_SLACK`` x the fastest one's seconds."""
    if not rows:
        return None
    fastest = min(r["train_seconds"] for r in rows)
    return min((r for r in rows if r["train_seconds"] <= TIME_SLACK * fastest), key=lambda r: r["best_dev_loss"])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--steps", type=int, default=110, help="unpacked steps whose token slots every candidate gets")
    parser.add_argument("--only", nargs="*", default=None, help="candidate names to run (default: all)")
    parser.add_argument("--seed", type=int, default=None, help="training seed (default: the profile's)")
    parser.add_argument("--keep", type=Path, default=None, help="keep each candidate's run folder under DIR")
    parser.add_argument("--label", default="")
    args = parser.parse_args(argv)

    from benchmarks.course_runtime import source_commit
    from course_utils.loading import load_tokenizer
    from course_utils.overrides import with_overrides
    from course_utils.profiles import get_profile
    from course_utils.prompts import prepare_data
    from course_utils.train import train

    base = get_profile(args.profile)
    seed = args.seed if args.seed is not None else base.train.seed
    tokenizer = load_tokenizer(base.model)

    def shaped(packing: bool, *more):
        return with_overrides(base, [("data.source", V2), ("train.heldout_records", DEV_RECORDS),
                                     ("train.packing", packing), ("train.seed", seed), *more],
                              where="benchmarks/recipe_v2.py")

    # token slots per step, from one encoding of v2 per packing choice (unpacked always: it sets the budget)
    picked = [c for c in CANDIDATES if not args.only or c[0] in args.only]
    encoded = {packing: prepare_data(shaped(packing), tokenizer)[0] for packing in {False, *(c[2] for c in picked)}}
    slots = {packing: slots_per_step(rows, base.batch_size, packing, seed) for packing, rows in encoded.items()}
    budget = args.steps * slots[False]  # token slots every candidate gets
    rows = [{"name": name, "learning_rate": lr, "packing": packing, "rows": len(encoded[packing]),
             "slots_per_step": slots[packing]} for name, lr, packing in picked]
    for row in rows:
        steps = round(budget / row["slots_per_step"])
        row["steps"] = steps
        every = max(1, steps // 2)
        profile = shaped(row["packing"], ("train.learning_rate", row["learning_rate"]), ("train.max_steps", steps),
                         ("train.eval_steps", every), ("train.save_steps", every), ("train.report_to", []))
        with tempfile.TemporaryDirectory() as tmp:
            folder = (args.keep / row["name"].replace(", ", "_").replace(" ", "")) if args.keep else Path(tmp) / "run"
            result = train(profile, folder, if_exists="overwrite")
        losses = dev_losses(result.log_history)
        row.update({"train_seconds": result.train_seconds, "tokens_per_second": result.tokens_per_second,
                    "dev_losses": losses, "best_dev_loss": min(loss for _, loss in losses),
                    "best_step": result.best_step})
        print(f"{row['name']}: {steps} 스텝, {result.train_seconds:.0f} s, 검증 손실 "
              + ", ".join(f"{s}: {v:.4f}" for s, v in losses))
        del result
    chosen = choose(rows)
    out = machine_info() | source_commit() | {
        "profile": base.name, "data_source": V2, "dev_records": DEV_RECORDS, "seed": seed,
        "unpacked_steps": args.steps, "token_slots": budget, "candidates": rows,
        "chosen": chosen["name"] if chosen else None,
        "rule": f"lowest best-checkpoint dev loss among candidates with train_seconds <= {TIME_SLACK} x the fastest"}
    label = f"_{args.label}" if args.label else ""
    write_result(f"recipe_v2_{base.name}{label}", out)
    return out


if __name__ == "__main__":
    main()
