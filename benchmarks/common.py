"""What every benchmark records (the machine it ran on, an atomic JSON write), and what the benchmarks of 05's stored
adapter share: its options, loading it, and timing parts in turn."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def machine_info() -> dict:
    import torch

    from course_utils.timing import cpu_isa, machine_kind

    info = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "cpu_isa": cpu_isa(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "machine_kind": machine_kind()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_bytes"] = torch.cuda.get_device_properties(0).total_memory
    return info


def write_result(name: str, data: dict, path: Path | None = None) -> Path:
    """Write ``data`` to ``path`` (default results/<name>_<date>.json) via a temp file + rename."""
    from course_utils.files import write_text

    path = Path(path) if path else RESULTS / f"{name}_{data.get('date', datetime.date.today().isoformat())}.json"
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str))
    print(f"results: {path}")
    return path


def plain_batches(train_set: list[dict], tokenizer):
    """The plain baseline's data: (rows, collator) — transformers' `DataCollatorForSeq2Seq`, pad to longest."""
    from transformers import DataCollatorForSeq2Seq

    rows = [{"input_ids": e["input_ids"], "attention_mask": [1] * len(e["input_ids"]), "labels": e["labels"]}
            for e in train_set]
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return rows, DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)


def stored_adapter_parser(doc: str, repeat: int, repeat_help: str) -> argparse.ArgumentParser:
    """The options of a benchmark that measures 05's stored adapter: --profile, --adapter, --repeat, --out."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--adapter", type=Path, help="default: notebooks/outputs/05_training/<profile>/adapter")
    parser.add_argument("--repeat", type=int, default=repeat, help=repeat_help)
    parser.add_argument("--out", type=Path, default=None, help="result file (default: benchmarks/results/...)")
    return parser


def load_stored_adapter(args) -> tuple:
    """(profile, adapter folder, model with the adapter on, tokenizer, the adapter's metadata) for the parsed options."""
    from course_utils.adapter import load_trained
    from course_utils.profiles import get_profile

    profile = get_profile(args.profile)
    adapter_dir = args.adapter or ROOT / "notebooks" / "outputs" / "05_training" / profile.name / "adapter"
    model, tokenizer, meta = load_trained(adapter_dir, profile.model)
    return profile, adapter_dir, model, tokenizer, meta


def adapter_header(profile, adapter_dir: Path, meta: dict) -> dict:
    """The machine, the commit, and which adapter was measured: the head of a stored-adapter benchmark's result."""
    from benchmarks.course_runtime import source_commit
    from course_utils.evaluation import adapter_digest

    return machine_info() | source_commit() | {
        "profile": profile.name, "model": profile.model, "adapter_sha256": adapter_digest(adapter_dir),
        "adapter_global_step": meta.get("global_step")}


def timed_in_turn(parts: dict, repeat: int) -> tuple[dict, dict, dict]:
    """Run each part ``repeat`` times in turn, so a machine that slows down slows every part alike.

    Returns (each part's last result, each part's seconds, each part's median seconds)."""
    results, seconds = {}, {part: [] for part in parts}
    for _ in range(repeat):
        for part, run in parts.items():
            start = time.perf_counter()
            results[part] = run()
            seconds[part].append(time.perf_counter() - start)
    return results, seconds, {part: statistics.median(s) for part, s in seconds.items()}
