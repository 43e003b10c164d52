"""Benchmark 6: packing records into rows vs one record per row, in the gpu8gb recipe's shape (issue 26).

    python -m benchmarks.packing [--records 583] [--profile cpu]

One epoch of the same records on the profile's model with the recipe's shape (batch 1 x grad-accum 16, gradient
checkpointing), through the course's own ``train``: unpacked (seed A), packed (seed A), unpacked (seed B), in that
interleaved order (seed B changes the training seed only where the profile's held-out records do not depend on it:
the bundled held-out file of cpu; a profile that splits its own source re-splits it). Each side reports wall time, answer tokens per second, optimizer steps, the share of row slots that
hold a token, and the held-out answer loss after the epoch; the two unpacked seeds give the seed noise of that loss.
Decision rule (issue 26): packing becomes the gpu8gb default if it finishes the epoch >= 1.5x faster with a held-out
loss within the seed noise of the unpacked one; otherwise it stays an option.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import machine_info, write_result

SPEEDUP_NEEDED = 1.5


def recipe_shape(profile, records: int, seed: int, packing: bool):
    from course_utils.overrides import with_overrides

    return with_overrides(profile, [("batch_size", 1), ("grad_accum", 16), ("gradient_checkpointing", True),
                                    ("train.max_steps", None), ("train.epochs", 1), ("data.max_records", records),
                                    ("train.eval_steps", 10_000), ("train.save_steps", 10_000),
                                    ("train.seed", seed), ("train.packing", packing)], where="benchmarks/packing.py")


def run_side(profile, folder: Path) -> dict:
    from course_utils.loading import load_tokenizer
    from course_utils.loss import answer_token_count
    from course_utils.packing import usage
    from course_utils.prompts import prepare_data
    from course_utils.train import train

    train_set, _, _, _ = prepare_data(profile, load_tokenizer(profile.model))
    answer = sum(answer_token_count(e) for e in train_set)
    slots = usage(train_set, profile.seq_len)  # unpacked: a row per record, padded to seq_len
    result = train(profile, folder, if_exists="replace", progress=lambda message: None)
    return {"packing": profile.train.packing, "seed": profile.train.seed, "rows": len(train_set),
            "steps": result.global_step, "seconds": result.train_seconds, "answer_tokens": answer,
            "answer_tokens_per_s": answer / result.train_seconds, "slot_usage": slots,
            "heldout_loss_before": result.heldout_loss_before, "heldout_loss_after": result.heldout_loss_after}


def main(argv=None) -> dict:
    from course_utils.notebook import quiet_libraries
    from course_utils.profiles import PROFILES_FILE, get_profile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--profiles", default=str(PROFILES_FILE))
    parser.add_argument("--records", type=int, default=None, help="training records (default: all of the profile's)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    quiet_libraries()
    base = get_profile(args.profile, args.profiles)
    seed_a, seed_b = base.train.seed, base.train.seed + 1
    sides = [("unpacked, seed A", seed_a, False), ("packed, seed A", seed_a, True), ("unpacked, seed B", seed_b, False)]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, seed, packing in sides:
            runs[name] = run_side(recipe_shape(base, args.records, seed, packing), Path(tmp) / name.replace(", ", "-"))
            r = runs[name]
            print(f"{name:17s} {r['seconds']:7.1f} s  {r['steps']:4d} steps  {r['rows']:4d} rows  "
                  f"{r['answer_tokens_per_s']:6.1f} answer tok/s  slots used {100 * r['slot_usage']:5.1f} %  "
                  f"held-out {r['heldout_loss_before']:.4f} -> {r['heldout_loss_after']:.4f}", flush=True)
    a, p, b = runs["unpacked, seed A"], runs["packed, seed A"], runs["unpacked, seed B"]
    speedup, noise = a["seconds"] / p["seconds"], abs(a["heldout_loss_after"] - b["heldout_loss_after"])
    gap = p["heldout_loss_after"] - a["heldout_loss_after"]
    adopt = speedup >= SPEEDUP_NEEDED and abs(gap) <= noise
    summary = {"profile": base.name, "model": base.model, "records": a["rows"], "seq_len": base.seq_len,
               "shape": "batch 1 x grad-accum 16, gradient checkpointing, 1 epoch", "runs": runs,
               "speedup": speedup, "seed_noise": noise, "loss_gap_packed_minus_unpacked": gap,
               "decision": ("packing becomes the gpu8gb default" if adopt else
                            f"packing stays an option (needs >= {SPEEDUP_NEEDED}x and a loss within the seed noise)")}
    print(f"packed / unpacked speed: {speedup:.2f}x; held-out loss gap {gap:+.4f} vs seed noise {noise:.4f} -> "
          f"{summary['decision']}")
    write_result(f"packing_{base.name}", {**machine_info(), **summary}, args.out)
    return summary


if __name__ == "__main__":
    main()
