"""Transfer: does what the adapter learned on the course's records carry over to real KoAlpaca instructions?

The bundled test split is written like the training records, so its gain partly measures the format. Real KoAlpaca
records (other writers, other kinds, longer answers) show how much of the gain is Korean instruction following.

Where the real records come from, first found first:
1. the file named by ``COURSE_TRANSFER_FILE`` (any KoAlpaca-format .json/.jsonl, e.g. a download of KoAlpaca v1.1):
   a file the learner names wins;
2. ``../shared/data/koalpaca_v1_0_sample.jsonl`` beside the course folder (1,200 KoAlpaca v1.0 records: the course's
   development machines have it, a learner's usually does not);
3. none: the report says so, and nothing is measured (the bundled records are not real-format data).
Records whose instruction is also a training instruction are left out, so a copy is never scored as transfer.
"""
from __future__ import annotations

import os
from pathlib import Path

SHARED_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "koalpaca_v1_0_sample.jsonl"
ENV_FILE = "COURSE_TRANSFER_FILE"


def real_format_file() -> Path | None:
    """The real KoAlpaca-format file to measure transfer on, or None when there is none (see the module's text)."""
    named = os.environ.get(ENV_FILE)
    if named:
        path = Path(named).expanduser()
        if not path.exists():
            from .data import DataError

            raise DataError(f"{ENV_FILE}={named}: 파일이 없습니다. KoAlpaca 형식 .json/.jsonl 파일 경로를 쓰거나 변수를 지우세요")
        return path
    return SHARED_SAMPLE if SHARED_SAMPLE.exists() else None


def real_format_records(training: list[dict], path: Path | None = None, limit: int | None = None) -> list[dict]:
    """The real-format records to score, without any whose instruction is a training instruction; ``limit`` keeps
    that many taken evenly across the file (``spread``). Empty when there is no file."""
    from .data import read_records
    from .splits import spread

    path = path if path is not None else real_format_file()
    if path is None:
        return []
    seen = {r["instruction"].strip() for r in training}
    records = [r for r in read_records(path, on_invalid="skip") if r["instruction"].strip() not in seen]
    return spread(records, limit) if limit else records


def transfer_loss(model, tokenizer, records: list[dict], seq_len: int, template: str, batch_size: int = 8) -> dict:
    """Answer loss (nats per answer token) of a peft ``model`` with its adapter off ("base") and on ("adapter") over
    ``records``, encoded as training encodes them (answers past ``seq_len`` cut, as in training)."""
    from .loss import heldout_loss
    from .prompts import encode, pad_id

    examples = [encode(r, tokenizer, seq_len, template) for r in records]
    pad = pad_id(tokenizer)
    with model.disable_adapter():
        base = heldout_loss(model, examples, pad, batch_size)
    adapter = heldout_loss(model, examples, pad, batch_size)
    return {"records": len(records), "truncated": sum(e["truncated"] for e in examples), "base": base,
            "adapter": adapter, "change": (adapter - base) / base}


def measure_transfer(model, tokenizer, records: list[dict], seq_len: int, template: str, answer_tokens: int,
                     generate: int, batch_size: int = 8) -> dict:
    """What 05 reports for a set of records, with the adapter off ("base") and on ("adapter") of a peft ``model``:
    the answer loss over every record (``transfer_loss``), and chrF, EOS and degenerate counts of greedy answers
    under the course's decoding defaults to ``generate`` records taken evenly across them (``spread``)."""
    from .evaluation import answers_only
    from .inference import DEFAULT_DECODING
    from .splits import spread

    loss = transfer_loss(model, tokenizer, records, seq_len, template, batch_size)
    answered = spread(records, generate)
    with model.disable_adapter():
        base = answers_only(model, tokenizer, answered, template, answer_tokens, batch_size, **DEFAULT_DECODING)
    tuned = answers_only(model, tokenizer, answered, template, answer_tokens, batch_size, **DEFAULT_DECODING)
    return {"loss": loss, "chrf": {"records": len(answered), "base": base["chrf"], "adapter": tuned["chrf"],
                                   "eos": [base["eos"].hits, tuned["eos"].hits],
                                   "degenerate": [base["degenerate"].hits, tuned["degenerate"].hits]}}


def transfer_for(model, tokenizer, profile, adapter_dir, progress=print) -> dict | None:
    """``measure_transfer`` on ``train.transfer_records`` real-format records (``train.transfer_answers`` answered),
    stored beside the adapter as ``report_for`` stores its evaluation: 05 measures, 06 reads. The records whose
    instruction is one of the profile's training instructions are left out. None, after saying why through
    ``progress``, when there is no real-format file (the module's text says where it is looked for) or every record
    is a training instruction."""
    from .evaluation import adapter_digest, cached_evaluate
    from .inference import DEFAULT_DECODING
    from .splits import split_source

    path = real_format_file()
    if path is None:
        progress(f"실제 형식 레코드가 없어 전이를 재지 않습니다: 강좌 폴더 옆에 ../shared/data/{SHARED_SAMPLE.name}을 두거나 "
                 f"{ENV_FILE}에 KoAlpaca 형식 파일 경로를 지정하세요")
        return None
    d, t = profile.data, profile.train
    training, _, _, _ = split_source(d.source, t.heldout_records, t.seed, d.on_invalid, d.max_records)
    records = real_format_records(training, path, limit=t.transfer_records)
    if not records:
        progress(f"{path.name}의 레코드가 모두 학습 지시문과 같아서 전이를 재지 않습니다: 학습에 쓰지 않은 실제 형식 파일을 쓰세요")
        return None
    key = {"adapter": adapter_digest(adapter_dir), "records": records, "decoding": DEFAULT_DECODING, "template": d.template,
           "seq_len": profile.seq_len, "answers": t.transfer_answers, "answer_tokens": t.answer_tokens,
           "batch_size": t.eval_batch_size}  # batched greedy answers can differ with the padding a batch brings

    def run():
        progress(f"실제 형식 레코드({path.name}) {len(records)}개로 전이를 잽니다: 어댑터를 끄고 켠 답변 손실, 그중 "
                 f"{min(t.transfer_answers, len(records))}개의 답 (CPU에서 몇 분)...")
        return measure_transfer(model, tokenizer, records, profile.seq_len, d.template, t.answer_tokens,
                                t.transfer_answers, t.eval_batch_size)

    return cached_evaluate(Path(adapter_dir) / "transfer.json", key, run) | {"file": path.name}


def transfer_table(report: dict, transfer: dict | None):
    """The test split (``report_for``'s report) beside the real-format records (``transfer_for``): answer loss and
    chrF with the adapter off and on, and answers that ended with EOS. One row per set, for 05 and 06."""
    import pandas as pd

    def row(name, records, loss_before, loss_after, chrf_before, chrf_after, eos_before, eos_after, answered,
            truncated=""):
        return {"세트": name, "레코드": records, "답변 손실 (기본 → 어댑터)": f"{loss_before:.3f} → {loss_after:.3f}",
                "변화 %": round(100 * (loss_after - loss_before) / loss_before, 1),
                "chrF (기본 → 어댑터)": f"{chrf_before:.1f} → {chrf_after:.1f}",
                "EOS로 끝남 (기본 → 어댑터)": f"{eos_before}/{answered} → {eos_after}/{answered}",
                "seq_len에서 잘린 답": truncated}

    base, tuned = report["base"], report["adapter"]
    rows = [row("시험 세트", base["loss_by_kind"]["all"][0], base["loss_by_kind"]["all"][2],
                tuned["loss_by_kind"]["all"][2], base["chrf"], tuned["chrf"], base["eos"].hits, tuned["eos"].hits,
                base["eos"].total)]
    if transfer is not None:
        loss, chrf = transfer["loss"], transfer["chrf"]
        rows.append(row(f"실제 형식 ({transfer['file']})", loss["records"], loss["base"], loss["adapter"],
                        chrf["base"], chrf["adapter"], chrf["eos"][0], chrf["eos"][1], chrf["records"],
                        f"{loss['truncated']}/{loss['records']}"))
    return pd.DataFrame(rows).set_index("세트")
