"""Print the README's estimator-vs-measured table (markdown) for the two offline models on this CPU.

    .venv/bin/python tools/estimator_table.py
"""
from __future__ import annotations

import dataclasses

from course_utils.loading import load_model
from course_utils.lora import attach_lora
from course_utils.notebook import quiet_libraries
from course_utils.profiles import get_profile
from course_utils.vram_measure import estimate_vs_measured

quiet_libraries()
print("| model | seq | checkpointing | activations estimated | measured | error | logits error |")
print("|---|---|---|---|---|---|---|")
for key, name in [("smollm2-135m-instruct", "SmolLM2-135M"), ("gemma-3-270m", "Gemma-3-270M")]:
    profile = dataclasses.replace(get_profile("cpu"), model=key)
    model = attach_lora(load_model(key), profile.lora)
    for seq in (128, 256):
        for ckpt in (False, True):
            rows = {r["term"]: r for r in estimate_vs_measured(model, profile, seq, ckpt)}
            a, lg = rows["activations"], rows["logits"]
            exact = all(rows[t]["estimated"] == rows[t]["measured"] for t in ("parameters", "gradients", "optimizer"))
            assert exact, rows
            print(f"| {name} | {seq} | {'on' if ckpt else 'off'} | {a['estimated'] / 2**20:.2f} MiB | "
                  f"{a['measured'] / 2**20:.2f} MiB | {a['error_pct']:+.2f} % | {lg['error_pct']:+.2f} % |")
