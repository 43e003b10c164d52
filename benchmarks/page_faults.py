"""Benchmark 13: a CPU training step's page faults, with glibc's default allocator settings and with freed memory kept.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/page_faults.py [--model gemma-3-270m] [--steps 8] [--rounds 2]

Issue 44 asks for 05 within 20 minutes on a 2-core AVX2 machine, and that machine's speed varied twofold within a day.
A LoRA step of the cpu model (4 rows x 256 tokens, every position an answer position, through ``loss.answer_loss_sum``
as training computes it) allocates its vocabulary-sized tensors afresh each time: Gemma's logits, their log-softmax
and their two gradients are about 0.9 GiB each. glibc serves any allocation above 32 MiB with a new ``mmap`` and gives
it back on ``free``, so each step faults those pages in again, zeroed by the kernel. This benchmark counts that cost
and what happens when glibc keeps freed memory instead (``MALLOC_MMAP_MAX_=0``: large blocks from the heap;
``MALLOC_TRIM_THRESHOLD_``: the heap is not given back), which computes the same step bit for bit.

Each side runs in its own process (the settings are read at start-up), the sides alternate ``--rounds`` times, and each
step records wall seconds, user and system CPU seconds, minor page faults and the process's peak RSS. The first step
of a process builds its memory and is reported apart. Nothing here changes the course: it measures whether it should.
Writes benchmarks/results/page_faults_<date>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import machine_info, write_result  # noqa: E402

KEEP_FREED = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}
SIDES = {"default": {}, "keep freed": KEEP_FREED}


def steps(model_key: str, n: int, rows: int, seq: int) -> list[dict]:
    """``n`` LoRA training steps (forward, backward; no optimizer: it allocates little) of one batch, measured."""
    import resource
    import time

    import torch
    from peft import LoraConfig, get_peft_model

    from course_utils.loading import load_model
    from course_utils.loss import answer_loss_sum

    torch.manual_seed(0)
    model = get_peft_model(load_model(model_key), LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    ids = torch.randint(100, 20_000, (rows, seq))
    labels = ids.clone()
    labels[:, 0] = -100
    batch = {"input_ids": ids, "labels": labels, "attention_mask": torch.ones_like(ids)}
    out = []
    for _ in range(n):
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        loss, count = answer_loss_sum(model, batch)
        (loss / count).backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        model.zero_grad(set_to_none=True)
        after = resource.getrusage(resource.RUSAGE_SELF)
        out.append({"seconds": time.perf_counter() - start, "user": after.ru_utime - before.ru_utime,
                    "system": after.ru_stime - before.ru_stime, "minor_faults": after.ru_minflt - before.ru_minflt,
                    "max_rss_gib": after.ru_maxrss / 2**20, "loss": float(loss),
                    "grad_sum": float(sum(g.double().sum() for g in grads))})
    return out


def side(name: str, args) -> list[dict]:
    env = os.environ | SIDES[name]
    command = [sys.executable, __file__, "--one-side", "--model", args.model, "--steps", str(args.steps),
               "--rows", str(args.rows), "--seq", str(args.seq)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--steps", type=int, default=8, help="steps per process; the first is reported apart")
    parser.add_argument("--rounds", type=int, default=2, help="processes per side, the sides alternating")
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--one-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help="result file (default: benchmarks/results/...)")
    args = parser.parse_args(argv)
    if args.one_side:
        print(json.dumps(steps(args.model, args.steps, args.rows, args.seq)))
        return {}
    runs = {name: [] for name in SIDES}
    for _ in range(args.rounds):
        for name in SIDES:
            runs[name].append(side(name, args))
            print(f"{name}: " + ", ".join(f"{s['seconds']:.1f}" for s in runs[name][-1]) + " s", flush=True)
    summary = {}
    for name, processes in runs.items():
        later = [s for p in processes for s in p[1:]]
        summary[name] = {"median_step_seconds": statistics.median(s["seconds"] for s in later),
                         "median_system_seconds": statistics.median(s["system"] for s in later),
                         "median_minor_faults": statistics.median(s["minor_faults"] for s in later),
                         "first_step_seconds": [p[0]["seconds"] for p in processes],
                         "peak_rss_gib": max(s["max_rss_gib"] for p in processes for s in p)}
    same = all(a["loss"] == b["loss"] and a["grad_sum"] == b["grad_sum"]
               for p, q in zip(runs["default"], runs["keep freed"], strict=True) for a, b in zip(p, q, strict=True))
    result = machine_info() | {"model": args.model, "rows": args.rows, "seq": args.seq, "steps": args.steps,
                               "rounds": args.rounds, "keep_freed_env": KEEP_FREED, "runs": runs,
                               "summary": summary, "same_loss_and_gradients": same,
                               "step_ratio": summary["keep freed"]["median_step_seconds"]
                               / summary["default"]["median_step_seconds"]}
    for name, s in summary.items():
        print(f"{name}: 스텝 중앙값 {s['median_step_seconds']:.2f} s (시스템 CPU {s['median_system_seconds']:.2f} s, "
              f"페이지 폴트 {s['median_minor_faults']:,.0f}), 최대 RSS {s['peak_rss_gib']:.2f} GiB")
    print(f"같은 손실과 그래디언트: {same}; 스텝 시간 비 {result['step_ratio']:.2f}")
    write_result("page_faults", result, args.out)
    return result


if __name__ == "__main__":
    main()
