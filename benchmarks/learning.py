"""Benchmark 4: how much the held-out answer loss falls — the course's recipe against a plain PyTorch loop.

    .venv/bin/python benchmarks/learning.py [--profile cpu] [--plain-seconds 420]

Both sides start from the same base model, LoRA config (the profile's), encoded training records and
held-out records, and are scored with the same function (`course_utils.loss.heldout_loss`: mean
cross-entropy over answer tokens, nats/token). They differ in the loop:
  plain  the loop the issue describes: random batches of `batch_size`, padding to the longest record,
         the model's own loss (prompt tokens masked), torch AdamW at a constant learning rate (no warmup,
         no schedule), stepped until `--plain-seconds` of wall time have passed (default 7 minutes);
  ours   `course_utils.train.train(profile)`, exactly what notebook 05 and `python -m course_utils.train` run.
Writes benchmarks/results/learning_<profile>_<date>.json and prints a table.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import machine_info, plain_batches, write_result  # noqa: E402


def plain_loop(profile, train_set, heldout, tokenizer, seconds: float, learning_rate: float) -> dict:
    """Train the profile's LoRA with a bare loop for ``seconds`` of wall time; held-out loss before/after."""
    from transformers import set_seed

    from course_utils.loading import load_profile_model
    from course_utils.lora import attach_lora
    from course_utils.loss import heldout_loss
    from course_utils.memory import to_device
    from course_utils.prompts import pad_id

    set_seed(profile.train.seed)
    model = attach_lora(load_profile_model(profile), profile.lora)
    model.config.use_cache = False
    pad = pad_id(tokenizer)
    before = heldout_loss(model, heldout, pad, profile.train.eval_batch_size)
    rows, collator = plain_batches(train_set, tokenizer)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    rng, order, steps = random.Random(profile.train.seed), [], 0
    model.train()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if len(order) < profile.batch_size:
            order = list(range(len(rows)))
            rng.shuffle(order)
        batch = collator([rows[order.pop()] for _ in range(profile.batch_size)])
        loss = model(**to_device(batch, model)).loss  # the collator builds CPU tensors; a 4-bit model is on cuda:0
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        steps += 1
    elapsed = time.perf_counter() - start
    after = heldout_loss(model, heldout, pad, profile.train.eval_batch_size)
    return {"side": "plain", "seconds": elapsed, "steps": steps, "learning_rate": learning_rate,
            "heldout_loss_before": before, "heldout_loss_after": after, "drop": 1 - after / before}


def course_recipe(profile) -> dict:
    from course_utils.train import train

    with tempfile.TemporaryDirectory() as tmp:
        r = train(profile, Path(tmp) / "run", progress=lambda *a: None)
    return {"side": "ours", "seconds": r.train_seconds, "steps": r.global_step,
            "learning_rate": profile.train.learning_rate, "heldout_loss_before": r.heldout_loss_before,
            "heldout_loss_after": r.heldout_loss_after, "drop": r.loss_drop}


def main(argv=None) -> dict:
    from course_utils.loading import load_tokenizer
    from course_utils.notebook import quiet_libraries
    from course_utils.profiles import PROFILES_FILE, get_profile
    from course_utils.prompts import prepare_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--profiles", default=str(PROFILES_FILE), help="a profiles YAML file (default: the course's)")
    parser.add_argument("--plain-seconds", type=float, default=420.0, help="wall time of the plain loop")
    parser.add_argument("--plain-lr", type=float, default=5e-4, help="constant learning rate of the plain loop")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    quiet_libraries()
    profile = get_profile(args.profile, args.profiles)
    tokenizer = load_tokenizer(profile.model)
    train_set, _, heldout, report = prepare_data(profile, tokenizer)  # test: reported
    runs = [plain_loop(profile, train_set, heldout, tokenizer, args.plain_seconds, args.plain_lr),
            course_recipe(profile)]
    print(f"{profile.model}, {report.kept} training records, {len(heldout)} held-out records")
    print("| loop | wall time | optimizer steps | held-out answer loss before -> after | drop |")
    print("|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['side']} | {r['seconds']:.0f} s | {r['steps']} | {r['heldout_loss_before']:.4f} -> "
              f"{r['heldout_loss_after']:.4f} | {100 * r['drop']:.1f} % |")
    summary = {"profile": profile.name, "model": profile.model, "train_records": report.kept,
               "heldout_records": len(heldout), "batch_size": profile.batch_size, "seq_len": profile.seq_len,
               "runs": runs}
    write_result(f"learning_{profile.name}", {**machine_info(), **summary}, args.out)
    return summary


if __name__ == "__main__":
    main()
