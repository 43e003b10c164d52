"""Train, dev and test: which records a run trains on, which it chooses on, which it only reports.

Dev is where every choice is made (the checkpoint kept, the decoding defaults, 09's search); test is only reported,
so its numbers are not tuned to it. The bundled held-out file says each record's split; any other source is split
here, with a fixed seed.
"""
from __future__ import annotations

import random

from .data import BUNDLED_HELDOUT, SPLITS, DataError, DataReport, HubUnavailableError, load_source, read_records


def load_heldout(split: str) -> list[dict]:
    """The bundled held-out records of one split (never trained on): ``"dev"``, on which every choice is made (the
    best checkpoint, the decoding defaults, 09's search), or ``"test"``, which is only reported."""
    if split not in ("dev", "test"):
        raise ValueError(f"split={split!r}: the held-out file holds 'dev' and 'test'")
    return [r for r in read_records(BUNDLED_HELDOUT) if r["split"] == split]


def spread(records: list, n: int) -> list:
    """``n`` records taken evenly across the whole of ``records`` (the i-th at i * len / n; all when there are
    fewer): the held-out file is grouped by kind, so its first ``n`` records would be one or two kinds only."""
    if n < 1:
        raise ValueError(f"spread: n={n}, ask for at least one record")
    m = min(n, len(records))
    return [records[i * len(records) // m] for i in range(m)]


def split_source(source: str, heldout_records: int, seed: int, on_invalid: str = "skip",
                 max_records: int | None = None) -> tuple[list[dict], list[dict], list[dict], DataReport]:
    """(training records, dev records, test records, report) for a profile's data section.

    Dev is where every choice is made (the checkpoint kept, the decoding defaults, 09's search); test is only
    reported, so its numbers are not tuned to it. ``heldout_records`` records in each of the two.

    ``bundled``: the bundled training file, and ``heldout_records`` of each split of the bundled held-out file taken
    evenly across it (``spread``: every kind of task; all 48 when asked for all).
    A file whose every record names its split (``bundled:ko_instructions_v2.jsonl``): its train records, and
    ``heldout_records`` of its dev and of its test records taken evenly across them.
    Any other source (a KoAlpaca file, a hub id): a fixed, seeded split of *that* source, so the held-out loss
    measures the training on that data rather than the shift to our bundled set: ``heldout_records`` for test, the
    next ``heldout_records`` for dev, the rest for training; ``max_records`` then caps the training records. A hub
    source that cannot be reached falls back to the bundled set (``report.note`` says so in one line;
    ``report.source`` is what was read).
    """
    report = DataReport(source=source)
    try:
        records = load_source(source, on_invalid, report)
    except HubUnavailableError as err:
        note = (f"{source}에 연결할 수 없고({err.__cause__.__class__.__name__}) 캐시에도 없어서 번들 한국어 데이터로 "
                "학습합니다")
        source, report = "bundled", DataReport(source="bundled", note=note)
        records = load_source(source, on_invalid, report)
    if not records:
        raise DataError(f"{source}: 쓸 수 있는 레코드가 없습니다 ({report.summary()}). 보고서가 가리키는 레코드를 고치세요")
    has_split = ["split" in r for r in records]
    if source == "bundled":
        report.split_by = "bundled"
        train, dev, test = records, spread(load_heldout("dev"), heldout_records), spread(load_heldout("test"),
                                                                                          heldout_records)
    elif any(has_split) and not all(has_split):
        missing = report.where[has_split.index(False)]
        raise DataError(f"{source}: 어떤 레코드에는 split이 있고 어떤 레코드에는 없습니다 (처음 빠진 곳: {missing}). 모든 "
                        "레코드에 split을 쓰거나 모두 지우세요 (지우면 고정 시드로 나눕니다)")
    elif all(has_split):  # a file that says each record's split (the bundled v2 set)
        report.split_by = "file"
        named = {s: [r for r in records if r["split"] == s] for s in SPLITS}
        if not named["dev"] or not named["test"]:
            raise DataError(f"{source}: 모든 레코드에 split이 있지만 dev나 test가 하나도 없습니다. 검증 세트와 시험 세트를 "
                            "정하거나 split 필드를 지우세요 (그러면 고정 시드로 나눕니다)")
        report.where = [w for w, r in zip(report.where, records, strict=True) if r["split"] == "train"]
        train, dev, test = named["train"], spread(named["dev"], heldout_records), spread(named["test"], heldout_records)
    else:
        if len(records) <= 2 * heldout_records:
            raise DataError(f"{source}: 쓸 수 있는 레코드 {len(records)}개({report.summary()})로는 검증 세트와 시험 세트에 "
                            f"{heldout_records}개씩 떼고 나머지로 학습할 수 없습니다. train.heldout_records를 줄이거나 "
                            "레코드를 더하세요")
        report.split_by = "seed"
        order = list(range(len(records)))
        random.Random(seed).shuffle(order)
        tested, checked = set(order[:heldout_records]), set(order[heldout_records:2 * heldout_records])
        test = [records[i] for i in sorted(tested)]
        dev = [records[i] for i in sorted(checked)]
        train = [r for i, r in enumerate(records) if i not in tested | checked]
        report.where = [w for i, w in enumerate(report.where) if i not in tested | checked]
    if max_records:
        train, report.where = train[:max_records], report.where[:max_records]
    return train, dev, test, report


def split_origin(report: DataReport) -> str:
    """Where a run's dev and test records came from (``split_source``'s report), in the words its data line prints."""
    return {"bundled": "동봉된 평가 파일", "file": f"{report.source}에 적힌 split대로 나눈 것",
            "seed": f"{report.source}를 시드로 나눈 것"}[report.split_by]
