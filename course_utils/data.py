"""Instruction data: load KoAlpaca-style records, skip and count bad records, report what was kept and why.

Formats (all "Alpaca": ``instruction`` + optional ``input`` + ``output``):
- KoAlpaca v1.0: one JSON array of {instruction, input, output} (``ko_alpaca_data.json``);
- KoAlpaca v1.1: JSONL, one {instruction, output, url} per line (no ``input``);
- the hub copy ``beomi/KoAlpaca-v1.1a`` (loaded with ``datasets`` when online);
- any local .json (array) or .jsonl file in Alpaca format;
- ``bundled``: the course's own Korean set, shipped in ``course_utils/data/``;
- ``bundled:<file>``: another file of that folder, e.g. ``bundled:koalpaca_v1_1_format.jsonl`` (our records in
  KoAlpaca v1.1's layout, what the ``smoke`` stand-in of the gpu8gb recipe trains on).

Two kinds of problem. A *file-level* problem stops with an error that names the file, line and fix:
unreadable JSON, the wrong top-level type, records without the Alpaca keys or with unknown keys, no
records left. A *record-level* problem (an empty field, a field that is not a string, a duplicate, a
record longer than ``seq_len``) is skipped and counted by reason, with the first offenders by index,
as real instruction datasets need; ``on_invalid="error"`` stops at the first one instead.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")
BUNDLED_TRAIN = DATA_DIR / "ko_instructions_train.jsonl"
BUNDLED_HELDOUT = DATA_DIR / "ko_instructions_heldout.jsonl"
PROBES = DATA_DIR / "probes.jsonl"
HUB_KOALPACA = "beomi/KoAlpaca-v1.1a"
KNOWN_KEYS = ("instruction", "input", "output", "url", "kind", "split")  # url: KoAlpaca v1.1's link (ignored)
SPLITS = ("train", "dev", "test")  # dev: every choice is made on it; test: only reported (course_utils.splits)
ON_LONG = ("drop", "truncate")  # what to do with a record longer than seq_len
ON_INVALID = ("skip", "error")  # what to do with a record-level problem
SHOWN_OFFENDERS = 5  # offenders listed per reason in a report


class DataError(ValueError):
    """A data file or record is wrong; the message names the file, the record and the field."""


class RecordError(DataError):
    """A problem of one record only (skippable): ``reason`` is its category in the report."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class DataReport:
    """What reading and validation kept and skipped, and why: counts by reason, first offenders by index."""

    source: str = ""  # what was read ("bundled" after an offline fallback)
    note: str = ""  # one line for the learner when something was substituted
    total: int = 0  # records read from the source
    kept: int = 0
    truncated: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> records skipped
    offenders: dict = field(default_factory=dict)  # reason -> first SHOWN_OFFENDERS descriptions
    where: list = field(default_factory=list)  # where each kept record is in its source ("…, line 7"), in order
    split_by: str = ""  # how splits.split_source took dev and test: "bundled", "file" (its split fields) or "seed"

    def skip(self, reason: str, where: str) -> None:
        self.dropped[reason] += 1
        shown = self.offenders.setdefault(reason, [])
        if len(shown) < SHOWN_OFFENDERS:
            shown.append(where)

    def rows(self) -> list[tuple[str, int, str]]:
        """(what, records, first offenders) for a table: read, kept, truncated, then one row per skip reason."""
        rows = [("읽은 레코드", self.total, ""), ("남긴 레코드", self.kept, ""), ("남김, 잘림", self.truncated, "")]
        return rows + [(f"건너뜀: {reason_label(reason)}", n, "; ".join(self.offenders.get(reason, [])))
                       for reason, n in self.dropped.items()]

    def summary(self) -> str:
        """One line: ``1200건 읽음, 1198건 남김; 건너뜀: 빈 필드(empty field) 1 (record 1043), …``."""
        skipped = ", ".join(f"{reason_label(reason)} {n} ({self.offenders[reason][0]}{', ...' if n > 1 else ''})"
                            for reason, n in self.dropped.items())
        return f"{self.total}건 읽음, {self.kept}건 남김" + (f"; 건너뜀: {skipped}" if skipped else "")


REASON_LABELS = {"empty field": "빈 필드", "non-string field": "문자열이 아닌 필드", "duplicate": "중복"}


def reason_label(reason: str) -> str:
    """A skip reason as a learner reads it: Korean, with the English reason (the key in ``dropped``) for a search."""
    if long := re.fullmatch(r"longer than (\d+) tokens", reason):
        return f"{long.group(1)} 토큰보다 긺({reason})"
    return f"{REASON_LABELS[reason]}({reason})" if reason in REASON_LABELS else reason


def _record(raw, where: str) -> dict:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: 'instruction'과 'output'이 있는 JSON 객체여야 하는데 {type(raw).__name__}입니다")
    if "instruction" not in raw or "output" not in raw:
        keys = ", ".join(sorted(raw)) or "none"
        raise DataError(f"{where}: 알 수 없는 형식입니다 (키: {keys}). Alpaca/KoAlpaca 레코드에는 'instruction', 'output'이 "
                        f"있고, 'input'(v1.0)이나 'url'(v1.1)이 있을 수 있습니다 (unknown format)")
    unknown = sorted(set(raw) - set(KNOWN_KEYS))
    if unknown:
        raise DataError(f"{where}: 알 수 없는 키 {unknown}. Alpaca/KoAlpaca 레코드의 키는 {', '.join(KNOWN_KEYS)}뿐입니다. "
                        "파일에서 그 키의 이름을 바꾸거나 지우세요 (unknown key)")
    rec = {}
    for key in ("instruction", "input", "output"):
        value = raw.get(key, "")
        if value is None and key == "input":
            value = ""
        if not isinstance(value, str):
            raise RecordError(f"{where}, field '{key}': 문자열이어야 하는데 {type(value).__name__}입니다 "
                              f"({value!r:.40}). JSON 문자열로 쓰세요, 예: \"{value}\"",
                              "non-string field")
        rec[key] = value.strip()
    for key in ("instruction", "output"):
        if not rec[key]:
            raise RecordError(f"{where}, field '{key}': 비어 있습니다. 모든 레코드에는 비어 있지 않은 {key}가 "
                              f"있어야 합니다; 이 레코드를 지우세요 (empty field)", "empty field")
    if isinstance(raw.get("kind"), str):  # the bundled set's kind of task (notebook 05's per-kind table)
        rec["kind"] = raw["kind"]
    if "split" in raw:  # the bundled held-out file: which split a record is in
        if raw["split"] not in SPLITS:
            raise DataError(f"{where}, field 'split': {raw['split']!r}는 쓸 수 없습니다. {', '.join(SPLITS)} 중 "
                            "하나로 쓰세요")
        rec["split"] = raw["split"]
    return rec


def normalize(raws, where, on_invalid: str = "error", report: DataReport | None = None) -> list[dict]:
    """Alpaca records from raw objects. ``where(i)`` names item i in messages. Record-level problems are
    skipped and counted in ``report`` (``on_invalid="skip"``) or raised (``"error"``); exact duplicates too."""
    if on_invalid not in ON_INVALID:
        raise DataError(f"on_invalid={on_invalid!r}: choose 'skip' or 'error'")
    report = report if report is not None else DataReport()
    records, seen = [], {}
    for i, raw in enumerate(raws):
        report.total += 1
        try:
            rec = _record(raw, where(i))
            key = (rec["instruction"], rec["input"], rec["output"])
            if key in seen:
                raise RecordError(f"{where(i)}는 {where(seen[key])}와 같습니다 (instruction, input, output이 모두 "
                                  f"같은 중복, duplicate); 하나를 지우세요", "duplicate")
        except RecordError as err:
            if on_invalid == "error":
                raise
            report.skip(err.reason, where(i))
            continue
        seen[key] = i
        records.append(rec)
        report.where.append(where(i))
    report.kept = len(records)
    return records


def read_records(path: str | Path, on_invalid: str = "error", report: DataReport | None = None,
                 name: str | None = None) -> list[dict]:
    """Read a .json (array of records) or .jsonl (one record per line) Alpaca file.

    Accepts a UTF-8 byte-order mark and CRLF line ends. Errors name the file and line or index. Record-level
    problems raise with ``on_invalid="error"`` (the default here) or are skipped into ``report`` with "skip".
    Messages name the file as ``name`` when given (``bundled:<file>`` instead of a path inside the package).
    """
    path = Path(path)
    shown = name or str(path)
    if not path.exists():
        raise DataError(f"{path}: 파일이 없습니다. 프로필의 data.source를 확인하세요 (경로, 'bundled' 또는 허브 id)")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: {err.lineno}번째 줄 {err.colno}번째 글자의 JSON이 잘못되었습니다 ({err.msg}). 그곳을 "
                            "고치세요 (.json 파일은 JSON 배열 하나여야 합니다; invalid JSON)") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: 레코드의 JSON 배열(KoAlpaca v1.0 형식)이어야 하는데 {type(data).__name__}입니다. "
                            "한 줄에 레코드 하나라면 .jsonl 파일로 저장하세요")
        return normalize(data, lambda i: f"{shown}, record {i}", on_invalid, report)
    if path.suffix == ".jsonl":
        raws, lines = [], []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                hint = " (JSON 배열로 보입니다: .json으로 저장하세요)" if line.lstrip().startswith("[") else ""
                raise DataError(f"{path}, line {n}: JSON이 잘못되었습니다 ({err.msg}; invalid JSON){hint}. 그 줄을 고치거나 "
                                "지우세요") from None
            if isinstance(raw, list):
                raise DataError(f"{path}, line {n}: .jsonl 파일은 한 줄에 객체 하나여야 하는데 JSON 배열이 있습니다. 배열은 "
                                ".json 파일로 저장하세요 (KoAlpaca v1.0 형식)")
            raws.append(raw)
            lines.append(n)
        return normalize(raws, lambda i: f"{shown}, line {lines[i]}", on_invalid, report)
    raise DataError(f"{path}: 알 수 없는 파일 형식 {path.suffix!r}입니다. .json(배열)이나 .jsonl(한 줄에 레코드 하나)을 "
                    "쓰세요")


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (to anything but 0/false)."""
    import os

    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


class HubUnavailableError(DataError):
    """A hub dataset could not be fetched (offline or unreachable) and is not in the local cache."""


def load_hub(dataset_id: str = HUB_KOALPACA, split: str = "train", on_invalid: str = "error",
             report: DataReport | None = None) -> list[dict]:
    """Records of a hub dataset in Alpaca format (needs the internet the first time; ``datasets`` caches it)."""
    try:
        from datasets import load_dataset

        ds = load_dataset(dataset_id, split=split)
    except Exception as err:  # datasets raises many types when offline
        unreachable = hub_offline() or isinstance(err, (ConnectionError, OSError, TimeoutError))
        kind = HubUnavailableError if unreachable else DataError
        raise kind(f"허브 데이터셋 {dataset_id!r}을(를) 읽지 못했습니다 ({err.__class__.__name__}). 인터넷에 연결하거나, "
                   f"data.source를 'bundled' 또는 로컬 .json/.jsonl 파일로 바꾸세요") from err
    return normalize((dict(r) for r in ds), lambda i: f"{dataset_id}, record {i}", on_invalid, report)


BUNDLED_PREFIX = "bundled:"  # data.source "bundled:<file>": a file in the course's data folder (any working directory)


def bundled_file(source: str) -> Path:
    """The file a ``bundled:<name>`` source names, in ``course_utils/data/``."""
    path = DATA_DIR / source[len(BUNDLED_PREFIX):]
    if not path.is_file():
        names = ", ".join(f"{BUNDLED_PREFIX}{p.name}" for p in sorted(DATA_DIR.glob("*.json*")))
        raise DataError(f"data.source={source!r}: 강좌의 데이터 폴더에 그런 파일이 없습니다. 번들 파일: {names}")
    return path


def load_source(source: str, on_invalid: str = "error", report: DataReport | None = None) -> list[dict]:
    """Training records from a profile's ``data.source``: ``bundled``, ``bundled:<file>``, a local path, or a hub id."""
    if source == "bundled":
        return read_records(BUNDLED_TRAIN, on_invalid, report)
    if source.startswith(BUNDLED_PREFIX):
        return read_records(bundled_file(source), on_invalid, report, name=source)
    if Path(source).suffix in (".json", ".jsonl") or Path(source).exists():
        return read_records(source, on_invalid, report)
    if "/" in source:
        return load_hub(source, on_invalid=on_invalid, report=report)
    raise DataError(f"data.source={source!r}: 'bundled', 'bundled:<파일>', .json/.jsonl 파일 경로, 또는 {HUB_KOALPACA!r} 같은 "
                    "허브 id를 쓰세요")


def load_probes() -> list[dict]:
    """Short factual questions with an expected answer substring: {question, expected}."""
    return [json.loads(line) for line in PROBES.read_text(encoding="utf-8").splitlines() if line.strip()]
