"""What every benchmark records: the machine it ran on, and an atomic JSON write."""
from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


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
