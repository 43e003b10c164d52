"""Prepare KoAlpaca (or any Alpaca-format file) for train.py: check every record, hold some out, write three files.

    python prepare_dataset.py --dataset koalpaca --num_samples 10000 --output_dir data/koalpaca
    python prepare_dataset.py --dataset ko_alpaca_data.json --num_samples 2000 --output_dir data/mine

Writes <output_dir>/train.jsonl, dev.jsonl and test.jsonl (instruction, input, output per line). dev.jsonl is what
train.py keeps its best checkpoint by (every choice is made on it); test.jsonl is only for reporting, never for
choosing. A record with an empty or non-string field, or a copy of an earlier one, is skipped; a training record
longer than --max_length tokens in --model_name's tokenizer is left out. Each is counted, with the first ones named.
The held-out records are drawn first (test, then dev), at random with --seed, so they never depend on
--num_samples. Existing files are never replaced.
"""
import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from transformers import AutoTokenizer

HUB = {"koalpaca": "beomi/KoAlpaca-v1.1a"}  # KoAlpaca v1.1: {instruction, output, url}; v1.0 adds "input"


def parsed(text, where):
    """One JSON value; the error names where it is and what is wrong there."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        sys.exit(f"오류: {where}: 올바른 JSON이 아닙니다 ({err.msg}, {err.lineno}행 {err.colno}열). 그 부분을 고치세요")


def raw_records(dataset):
    """(record, where it is) pairs from a hub dataset or a local .json (array) / .jsonl (one object per line) file."""
    path = Path(dataset)
    if path.suffix.lower() in (".json", ".jsonl") and not path.is_file():
        sys.exit(f"오류: {path} 파일이 없습니다. 경로를 확인하세요 (허브 데이터는 --dataset koalpaca 또는 허브 id)")
    if path.suffix.lower() == ".jsonl":
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        return [(parsed(line, f"{path}, line {n}"), f"{path}, line {n}") for n, line in enumerate(lines, start=1)
                if line.strip()]
    if path.suffix.lower() == ".json":
        records = parsed(path.read_text("utf-8-sig"), str(path))
        if not isinstance(records, list):
            sys.exit(f"오류: {path}: .json 파일은 레코드의 JSON 배열이어야 합니다 (한 줄에 한 레코드라면 .jsonl로 저장하세요)")
        return [(record, f"{path}, record {i}") for i, record in enumerate(records)]
    from datasets import load_dataset  # a hub id: downloaded once, then read from the datasets cache

    name = HUB.get(dataset, dataset)
    return [(dict(record), f"{name}, record {i}") for i, record in enumerate(load_dataset(name, split="train"))]


def clean(pairs, skipped):
    """The usable records, their fields stripped; the others go to ``skipped[reason]`` by where they are."""
    records, seen = [], set()
    for raw, where in pairs:
        if not isinstance(raw, dict) or "instruction" not in raw or "output" not in raw:
            sys.exit(f"오류: {where}: Alpaca 레코드가 아닙니다. 'instruction'과 'output'이 있어야 합니다 ('input'은 선택)")
        fields = {key: raw.get(key) or "" for key in ("instruction", "input", "output")}
        if not all(isinstance(value, str) for value in fields.values()):
            skipped["문자열이 아닌 필드"].append(where)
            continue
        record = {key: value.strip() for key, value in fields.items()}
        if not record["instruction"] or not record["output"]:
            skipped["빈 instruction 또는 output"].append(where)
        elif (key := tuple(record.values())) in seen:
            skipped["앞 레코드와 같은 중복"].append(where)
        else:
            seen.add(key)
            records.append((record, where))
    return records


def length(record, tokenizer):
    """Tokens of the record as train.py feeds it: BOS, prompt, a space and the answer, EOS."""
    prompt = f"### 질문: {record['instruction']}\n\n" + (f"### 입력: {record['input']}\n\n" if record["input"] else "")
    return len(tokenizer(prompt + "### 답변:").input_ids) + len(
        tokenizer(" " + record["output"], add_special_tokens=False).input_ids) + 1


def write_jsonl(path, records):
    """Write to a temporary name, then rename: the file is whole or absent."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    partial.rename(path)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Check KoAlpaca-format records and write train/dev/test JSONL files.")
    parser.add_argument("--dataset", default="koalpaca", help="koalpaca (beomi/KoAlpaca-v1.1a), a hub id, "
                        "or a local .json / .jsonl file")
    parser.add_argument("--num_samples", type=int, default=10000, help="training records to write at most")
    parser.add_argument("--eval_records", type=int, default=48, help="records held out in each of dev and test")
    parser.add_argument("--output_dir", default="data/koalpaca")
    parser.add_argument("--model_name", default="K-intelligence/Midm-2.0-Mini-Instruct", help="whose tokenizer counts")
    parser.add_argument("--max_length", type=int, default=512, help="train.py's --max_length")
    parser.add_argument("--seed", type=int, default=1234)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    output_dir = Path(args.output_dir)
    paths = {name: output_dir / f"{name}.jsonl" for name in ("train", "dev", "test")}
    if any(path.exists() for path in paths.values()):
        sys.exit(f"오류: {output_dir}에 이미 train.jsonl, dev.jsonl 또는 test.jsonl이 있습니다. 아무것도 바꾸지 "
                 f"않았습니다. 다른 --output_dir을 고르세요")
    skipped = defaultdict(list)
    pairs = raw_records(args.dataset)
    records = clean(pairs, skipped)
    if len(records) <= 2 * args.eval_records:
        sys.exit(f"오류: {args.dataset}: 쓸 수 있는 레코드가 {len(records)}개라 검증 세트와 시험 세트에 "
                 f"{args.eval_records}개씩 떼어 두고 나머지로 학습할 수 없습니다. --eval_records를 줄이세요")

    order = list(range(len(records)))
    random.Random(args.seed).shuffle(order)
    tested, checked = set(order[:args.eval_records]), set(order[args.eval_records:2 * args.eval_records])
    test_set = [records[i][0] for i in sorted(tested)]  # only reported
    dev_set = [records[i][0] for i in sorted(checked)]  # train.py keeps the checkpoint with the lowest loss here
    held = tested | checked
    tokenizer = AutoTokenizer.from_pretrained(args.model_name)
    train_set = []
    for i, (record, where) in enumerate(records):
        if i in held or len(train_set) == args.num_samples:
            continue
        if (n := length(record, tokenizer)) > args.max_length:
            skipped[f"{args.max_length} 토큰보다 긺"].append(f"{where} ({n} 토큰)")
        else:
            train_set.append(record)

    if not train_set:
        sys.exit(f"오류: 남은 학습 레코드가 없습니다 ({', '.join(f'{k} {len(v)}개' for k, v in skipped.items())}). "
                 f"--max_length를 늘리거나 데이터를 고치세요")
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train_set), ("dev", dev_set), ("test", test_set)):
        write_jsonl(paths[name], part)
    print(f"{args.dataset}에서 레코드 {len(pairs)}개를 읽었습니다")
    for reason, where in skipped.items():
        print(f"  건너뜀, {reason}: {len(where)}개 (처음: {'; '.join(where[:3])})")
    print(f"학습 레코드 {len(train_set)}개를 {paths['train']}에, 검증 레코드 {len(dev_set)}개를 {paths['dev']}에, "
          f"시험 레코드 {len(test_set)}개를 {paths['test']}에 썼습니다")


if __name__ == "__main__":
    main()
