"""Prepare a training file from KoAlpaca or any Alpaca-format source, with a validation report (the seed's
``prepare_dataset.py``).

    python -m course_utils.prepare --dataset koalpaca --num_samples 10000 --output data/koalpaca_10k.jsonl
    python -m course_utils.prepare --dataset ko_alpaca_data.json --num_samples 2000 --output data/mine.jsonl
    python -m course_utils.train --profile gpu8gb --dataset_path data/koalpaca_10k.jsonl --output_dir outputs/seed

``--dataset koalpaca`` is the hub copy ``beomi/KoAlpaca-v1.1a`` (internet once, then the ``datasets`` cache);
any other value is a local .json/.jsonl file, ``bundled``, ``bundled:<file>`` or a hub id. Records are read and
validated as training reads them (``data.read_records`` / ``load_hub``: an empty or non-string field, a duplicate,
a record longer than the profile's ``seq_len`` in its tokenizer is skipped and counted with the first offenders),
then the first ``--num_samples`` kept records are written as JSONL (instruction, input, output), atomically.
An existing output file is never replaced without ``--overwrite`` (which moves it aside first).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

DATASETS = {"koalpaca": "beomi/KoAlpaca-v1.1a"}  # short names the seed's --dataset accepts


def prepare(dataset: str, num_samples: int | None, output, profile, overwrite: bool = False, progress=print) -> dict:
    """Read, validate and write the first ``num_samples`` usable records of ``dataset`` to ``output`` (JSONL); return
    {"report": DataReport, "written": n, "output": path, "moved_to": where an earlier file went, or None}."""
    from .data import DataError, DataReport, load_source
    from .files import write_text
    from .loading import load_tokenizer
    from .prompts import encode, validate
    from .runs import move_aside

    if num_samples is not None and num_samples < 1:
        raise DataError(f"--num_samples must be >= 1, got {num_samples}")
    output = Path(output)
    if output.suffix != ".jsonl":
        raise DataError(f"--output {output}: write a .jsonl file (one record per line), e.g. data/koalpaca.jsonl")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} already exists. Nothing was changed. Choose another --output, or --overwrite "
                              f"to move it aside to {output}.previous-<time> first")
    source = DATASETS.get(dataset, dataset)
    report = DataReport(source=source)
    records = load_source(source, profile.data.on_invalid, report)
    tokenizer = load_tokenizer(profile.model)
    lengths = [encode(r, tokenizer, template=profile.data.template)["length"] for r in records]
    kept, report = validate(records, lengths, profile.seq_len, profile.data.on_long, report)
    if not kept:
        raise DataError(f"{source}: 쓸 수 있는 레코드가 없습니다 ({report.summary()}). 보고서가 가리키는 레코드를 고치세요")
    chosen = kept[:num_samples] if num_samples else kept
    moved = move_aside(output) if output.exists() else None
    text = "".join(json.dumps({k: r[k] for k in ("instruction", "input", "output")}, ensure_ascii=False) + "\n"
                   for r in chosen)
    write_text(output, text)
    return {"report": report, "written": len(chosen), "output": output, "moved_to": moved}


def main(argv=None) -> None:
    from .notebook import quiet_libraries

    quiet_libraries()
    parser = argparse.ArgumentParser(prog="python -m course_utils.prepare", description=(
        "Read KoAlpaca (or any Alpaca-format file or hub dataset), skip and count bad records, and write the first "
        "N usable ones as a JSONL training file."))
    parser.add_argument("--dataset", required=True, help="koalpaca (the hub's beomi/KoAlpaca-v1.1a), a .json/.jsonl "
                        "file, bundled, bundled:<file>, or a hub id")
    parser.add_argument("--num_samples", type=int, default=None, help="write the first N usable records (default: all)")
    parser.add_argument("--output", required=True, help="the JSONL file to write")
    parser.add_argument("--profile", default=None, help="whose tokenizer and seq_len the length check uses "
                        "(default: the active profile)")
    parser.add_argument("--overwrite", action="store_true", help="move an existing --output aside first")
    args = parser.parse_args(argv)
    from .data import DataError
    from .profiles import active_profile, get_profile

    try:
        profile = get_profile(args.profile) if args.profile else active_profile()
        done = prepare(args.dataset, args.num_samples, args.output, profile, args.overwrite)
    except (DataError, ValueError, OSError) as err:  # a bad file or record, offline hub, existing output
        raise SystemExit(f"error: {err}") from None
    report = done["report"]
    print(f"검증 보고서 ({report.source}, 길이 검사: {profile.model} 토크나이저, seq_len {profile.seq_len}):")
    for what, n, first in report.rows():
        print(f"  {what}: {n}" + (f" (처음: {first})" if first else ""))
    if done["moved_to"]:
        print(f"이전 파일은 {done['moved_to']}로 옮겼습니다")
    print(f"{done['written']}개 레코드를 {done['output']}에 썼습니다. 학습: python -m course_utils.train "
          f"--profile {profile.name} --dataset_path {done['output']} --output_dir outputs/train")


if __name__ == "__main__":
    main()
