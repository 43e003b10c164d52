"""Benchmark 2: the VRAM estimator (notebook 01) against measurement, per term, on this CPU.

    .venv/bin/python benchmarks/estimator.py [--models smollm2-135m-instruct gemma-3-270m]
                                             [--seq 128 256 512] [--batch 1 4]

For each model x sequence length x batch size x checkpointing on/off: parameters, gradients and
AdamW states must match to the byte; activations are measured by notebook 01's rule (bytes of the
tensors autograd saves for backward, `course_utils.vram_measure`), logits as their storage. fp32,
LoRA from the `cpu` profile. Prints a table with the error % per cell and names the worst cell;
writes benchmarks/results/estimator_<date>.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import machine_info, write_result  # noqa: E402
from course_utils.units import GIB, MIB  # noqa: E402

EXACT_TERMS = ("parameters", "gradients", "optimizer")


MEASURE_OVERHEAD = 3  # measuring a step here needs about 3x the estimate in RAM (loss and logit copies, hooks)


def measure(key: str, seq: int, batch: int, ckpt: bool) -> list[dict]:
    """Rows for one model x seq x batch x checkpointing cell (in this process)."""
    from course_utils.loading import load_model
    from course_utils.lora import attach_lora
    from course_utils.profiles import get_profile
    from course_utils.vram_measure import estimate_vs_measured

    profile = dataclasses.replace(get_profile("cpu"), model=key)
    model = attach_lora(load_model(key), profile.lora)
    return [{"model": key, **r} for r in estimate_vs_measured(model, profile, seq, ckpt, batch)]


def ram_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def print_cells(rows: list[dict]) -> None:
    cells = {}
    for r in rows:
        cells.setdefault((r["model"], r["seq_len"], r["batch_size"], r["checkpointing"]), {})[r["term"]] = r
    for (key, seq, batch, ckpt), cell in cells.items():
        a = cell["activations"]
        exact = ["exact" if cell[t]["estimated"] == cell[t]["measured"] else f"{cell[t]['error_pct']:+.2f} %"
                 for t in EXACT_TERMS]
        print(f"| {key} | {seq} | {batch} | {'on' if ckpt else 'off'} | {' | '.join(exact)} | "
              f"{a['estimated'] / MIB:.2f} / {a['measured'] / MIB:.2f} | {a['error_pct']:+.2f} % | "
              f"{cell['logits']['error_pct']:+.2f} % |", flush=True)


def main(argv=None) -> dict:
    import json
    import subprocess

    from course_utils.notebook import quiet_libraries
    from course_utils.vram import estimate_vram

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m-instruct", "gemma-3-270m"])
    parser.add_argument("--seq", nargs="+", type=int, default=[128, 256, 512])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cell", action="store_true", help="measure one cell in this process, print JSON rows")
    parser.add_argument("--checkpointing", choices=["off", "on"], default="off", help="with --cell")
    args = parser.parse_args(argv)
    quiet_libraries()
    if args.cell:
        print(json.dumps(measure(args.models[0], args.seq[0], args.batch[0], args.checkpointing == "on")))
        return {}
    print("| model | seq | batch | ckpt | params | grads | optim | activations est / measured (MiB) | act. error | logits error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows, skipped = [], []
    for key in args.models:
        for seq in args.seq:
            for batch in args.batch:
                for ckpt in ("off", "on"):
                    need = MEASURE_OVERHEAD * estimate_vram(key, "lora", seq, batch, 8, "attention", ckpt == "on",
                                                            "adamw_torch", "float32", device="cpu").total
                    if need > 0.9 * ram_bytes():
                        skipped.append({"model": key, "seq_len": seq, "batch_size": batch, "checkpointing": ckpt == "on",
                                        "reason": f"measuring needs ~{need / GIB:.0f} GiB of RAM, this machine has "
                                                  f"{ram_bytes() / GIB:.0f} GiB"})
                        print(f"| {key} | {seq} | {batch} | {ckpt} | skipped: {skipped[-1]['reason']} |", flush=True)
                        continue
                    # a fresh process per cell: the memory of one measurement never adds to the next
                    done = subprocess.run([sys.executable, __file__, "--cell", "--models", key, "--seq", str(seq),
                                           "--batch", str(batch), "--checkpointing", ckpt], capture_output=True, text=True)
                    if done.returncode != 0:
                        raise SystemExit(f"{key} seq {seq} batch {batch} ckpt {ckpt} failed:\n{done.stderr[-2000:]}")
                    cell = json.loads(done.stdout.strip().splitlines()[-1])
                    print_cells(cell)
                    rows.extend(cell)
    worst = max(rows, key=lambda r: abs(r["error_pct"]))
    print(f"\nworst cell: {worst['model']} seq {worst['seq_len']} batch {worst['batch_size']} checkpointing "
          f"{'on' if worst['checkpointing'] else 'off'}, {worst['term']}: {worst['error_pct']:+.2f} %")
    inexact = [r for r in rows if r["term"] in EXACT_TERMS and r["estimated"] != r["measured"]]
    print("parameters, gradients, optimizer states: " + ("exact in every cell" if not inexact else
          f"NOT exact in {len(inexact)} cells"))
    result = {**machine_info(), "rows": rows, "skipped": skipped, "worst": worst, "exact_terms_match": not inexact}
    write_result("estimator", result, args.out)
    return result


if __name__ == "__main__":
    main()
