"""Instruction data: load KoAlpaca-style records, validate them, report what was kept and why.

Formats (all "Alpaca": ``instruction`` + optional ``input`` + ``output``):
- KoAlpaca v1.0: one JSON array of {instruction, input, output} (``ko_alpaca_data.json``);
- KoAlpaca v1.1: JSONL, one {instruction, output, url} per line (no ``input``);
- the hub copy ``beomi/KoAlpaca-v1.1a`` (loaded with ``datasets`` when online);
- any local .json (array) or .jsonl file in Alpaca format;
- ``bundled``: the course's own Korean set, shipped in ``course_utils/data/``.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")
BUNDLED_TRAIN = DATA_DIR / "ko_instructions_train.jsonl"
BUNDLED_HELDOUT = DATA_DIR / "ko_instructions_heldout.jsonl"
PROBES = DATA_DIR / "probes.jsonl"
HUB_KOALPACA = "beomi/KoAlpaca-v1.1a"
ON_LONG = ("drop", "truncate")  # what to do with a record longer than seq_len


class DataError(ValueError):
    """A data file or record is wrong; the message names the file, the record and the field."""


def _record(raw, where: str) -> dict:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected a JSON object with 'instruction' and 'output', got {type(raw).__name__}")
    if "instruction" not in raw or "output" not in raw:
        keys = ", ".join(sorted(raw)) or "none"
        raise DataError(f"{where}: unknown format (keys: {keys}). Expected Alpaca/KoAlpaca keys "
                        f"'instruction', 'output' and optionally 'input' (v1.0) or 'url' (v1.1)")
    rec = {}
    for key in ("instruction", "input", "output"):
        value = raw.get(key, "")
        if value is None and key == "input":
            value = ""
        if not isinstance(value, str):
            raise DataError(f"{where}, field '{key}': expected a string, got {type(value).__name__} ({value!r:.40}). "
                            f"Write it as a JSON string, e.g. \"{value}\"")
        rec[key] = value.strip()
    for key in ("instruction", "output"):
        if not rec[key]:
            raise DataError(f"{where}, field '{key}': empty. Every record needs a non-empty {key}; remove the record")
    return rec


def read_records(path: str | Path) -> list[dict]:
    """Read a .json (array of records) or .jsonl (one record per line) Alpaca file.

    Accepts a UTF-8 byte-order mark and CRLF line ends. Errors name the file and line or index.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found. Check data.source in the profile (a path, 'bundled' or a hub id)")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}. "
                            f"Fix the file there (a .json file must be one JSON array)") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON array of records (KoAlpaca v1.0 style), got "
                            f"{type(data).__name__}. For one record per line use a .jsonl file")
        return [_record(r, f"{path}, record {i}") for i, r in enumerate(data)]
    if path.suffix == ".jsonl":
        records = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                hint = " (this looks like a JSON array: save it as .json)" if line.lstrip().startswith("[") else ""
                raise DataError(f"{path}, line {n}: invalid JSON: {err.msg}{hint}. Fix or remove that line") from None
            if isinstance(raw, list):
                raise DataError(f"{path}, line {n}: a JSON array where a .jsonl file needs one object per line; "
                                f"save the array as a .json file (KoAlpaca v1.0 style)")
            records.append(_record(raw, f"{path}, line {n}"))
        return records
    raise DataError(f"{path}: unknown file type {path.suffix!r}; use .json (array) or .jsonl (one record per line)")


def load_hub(dataset_id: str = HUB_KOALPACA, split: str = "train") -> list[dict]:
    """Records of a hub dataset in Alpaca format (needs the internet the first time)."""
    try:
        from datasets import load_dataset

        ds = load_dataset(dataset_id, split=split)
    except Exception as err:  # datasets raises many types when offline
        raise DataError(f"Could not load the hub dataset {dataset_id!r} ({err.__class__.__name__}). Connect to the "
                        f"internet, or set data.source to 'bundled' or a local .json/.jsonl file") from err
    return [_record(dict(r), f"{dataset_id}, record {i}") for i, r in enumerate(ds)]


def load_source(source: str) -> list[dict]:
    """Training records from a profile's ``data.source``: ``bundled``, a local path, or a hub id."""
    if source == "bundled":
        return read_records(BUNDLED_TRAIN)
    if Path(source).suffix in (".json", ".jsonl") or Path(source).exists():
        return read_records(source)
    if "/" in source:
        return load_hub(source)
    raise DataError(f"data.source={source!r}: use 'bundled', a path to a .json/.jsonl file, or a hub id like "
                    f"{HUB_KOALPACA!r}")


def load_heldout() -> list[dict]:
    """The bundled held-out records (never trained on)."""
    return read_records(BUNDLED_HELDOUT)


def load_probes() -> list[dict]:
    """Short factual questions with an expected answer substring: {question, expected}."""
    return [json.loads(line) for line in PROBES.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class DataReport:
    """What validation kept and dropped, and why (counts by reason)."""

    total: int = 0
    kept: int = 0
    truncated: int = 0
    dropped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, int]]:
        rows = [("records read", self.total), ("kept", self.kept), ("kept, truncated", self.truncated)]
        return rows + [(f"dropped: {reason}", n) for reason, n in self.dropped.items()]


def validate(records: list[dict], lengths: list[int] | None = None, max_len: int | None = None,
             on_long: str = "drop") -> tuple[list[dict], DataReport]:
    """Drop exact duplicates and records longer than ``max_len`` tokens (or mark them to truncate).

    ``lengths`` are each record's token counts (prompt + answer + EOS). ``on_long`` is ``drop`` or
    ``truncate``. Nothing is removed silently: every drop is counted by reason and noted by index.
    """
    if on_long not in ON_LONG:
        raise DataError(f"on_long={on_long!r}: choose 'drop' or 'truncate'")
    report = DataReport(total=len(records))
    seen: dict[tuple, int] = {}
    kept = []
    for i, rec in enumerate(records):
        key = (rec["instruction"], rec["input"], rec["output"])
        if key in seen:
            report.dropped["duplicate"] += 1
            report.notes.append(f"record {i} duplicates record {seen[key]}")
            continue
        seen[key] = i
        if lengths is not None and max_len is not None and lengths[i] > max_len:
            if on_long == "drop":
                report.dropped[f"longer than {max_len} tokens"] += 1
                report.notes.append(f"record {i}: {lengths[i]} tokens > {max_len}")
                continue
            report.truncated += 1
        kept.append(rec)
    report.kept = len(kept)
    return kept, report
