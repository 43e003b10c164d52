"""From an instruction record to training tokens: prompt template, EOS, label masking, truncation.

Labels are built from two separately tokenized parts, prompt and answer, so the boundary is exact:
prompt tokens get -100 (no loss), answer tokens and the final EOS are learned. Padding is marked by
the attention mask, never by comparing token ids with the pad id (SmolLM2's pad token *is* its EOS).
Records longer than ``seq_len`` in a tokenizer are dropped or kept to be truncated here (``validate``).
"""
from __future__ import annotations

from .data import ON_LONG, DataError, DataReport

IGNORE = -100

KOALPACA = "koalpaca"
CHAT = "chat"
TEMPLATES = (KOALPACA, CHAT)


def format_koalpaca(record: dict) -> tuple[str, str]:
    """(prompt, answer) in the KoAlpaca style: ``### 질문: …`` then ``### 답변:``."""
    if record.get("input"):
        prompt = f"### 질문: {record['instruction']}\n\n### 입력: {record['input']}\n\n### 답변:"
    else:
        prompt = f"### 질문: {record['instruction']}\n\n### 답변:"
    return prompt, " " + record["output"]


def format_chat(record: dict, tokenizer) -> tuple[str, str]:
    """(prompt, answer) with the tokenizer's own chat template (user turn, then assistant answer)."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{type(tokenizer).__name__}에는 채팅 템플릿이 없습니다 (ships no chat template: Gemma GGUF에 "
                         f"없음); template='koalpaca'를 쓰세요")
    user = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                           add_generation_prompt=True)
    return prompt, record["output"]


def format_record(record: dict, tokenizer, template: str = KOALPACA) -> tuple[str, str]:
    if template == KOALPACA:
        return format_koalpaca(record)
    if template == CHAT:
        return format_chat(record, tokenizer)
    raise ValueError(f"template={template!r}: choose one of {', '.join(TEMPLATES)}")


def koalpaca_chat_template(tokenizer) -> str:
    """A Jinja chat template that renders one user turn exactly as training formatted its prompt.

    ``tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)`` then gives
    the same token ids as ``prompt_ids(format_koalpaca({"instruction": q})[0], tokenizer)``: the BOS token when
    this tokenizer adds one, ``### 질문: …`` and ``### 답변:``. An assistant turn is rendered as training's
    answer (a space, the text, EOS). Chat servers, Ollama and llama.cpp then send prompts the model knows.
    """
    bos = "{{ bos_token }}" if tokenizer("x").input_ids[:1] == [tokenizer.bos_token_id] else ""
    return ("{%- set users = messages | selectattr('role', 'equalto', 'user') | list -%}"
            "{%- if users | length != 1 -%}{{ raise_exception('This model was trained on single questions: send "
            "exactly one user message') }}{%- endif -%}"
            f"{bos}### 질문: {{{{ users[0]['content'] | trim }}}}\n\n### 답변:"
            "{%- for m in messages if m['role'] == 'assistant' %} {{ m['content'] | trim }}{{ eos_token }}{%- endfor -%}")


def prompt_ids(prompt: str, tokenizer, template: str = KOALPACA) -> list[int]:
    """Token ids of a prompt as training and generation both see it (BOS where the tokenizer adds one)."""
    # a chat template already wrote its special tokens into the text
    return tokenizer(prompt, add_special_tokens=(template != CHAT)).input_ids


def encode(record: dict, tokenizer, max_len: int | None = None, template: str = KOALPACA) -> dict:
    """Token ids and labels for one record.

    Returns input_ids, labels (prompt -> -100), n_prompt, n_answer (answer + EOS tokens),
    length (before truncation) and truncated. When longer than ``max_len`` the answer is cut
    from the end and has no EOS (it did not end there).
    """
    prompt, answer = format_record(record, tokenizer, template)
    p = prompt_ids(prompt, tokenizer, template)
    a = tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    ids = p + a
    labels = [IGNORE] * len(p) + a
    length = len(ids)
    truncated = max_len is not None and length > max_len
    if truncated:
        ids, labels = ids[:max_len], labels[:max_len]
    return {"input_ids": ids, "labels": labels, "n_prompt": len(p), "n_answer": len(a), "length": length,
            "truncated": truncated}


def collate(features: list[dict], pad_id: int) -> dict:
    """Pad a batch to its longest example: input_ids with ``pad_id``, labels with -100, mask 0.

    Padding is decided by position, so a real EOS label stays even when pad id == EOS id. Packed rows
    (``packing.pack``) also carry ``position_ids``; their padding gets positions of its own (0, 1, ...), a block
    that no record attends to.
    """
    import torch

    longest = max(len(f["input_ids"]) for f in features)
    ids, labels, mask, positions = [], [], [], []
    for f in features:
        n = len(f["input_ids"])
        ids.append(f["input_ids"] + [pad_id] * (longest - n))
        labels.append(f["labels"] + [IGNORE] * (longest - n))
        mask.append([1] * n + [0] * (longest - n))
        if "position_ids" in f:
            positions.append(f["position_ids"] + list(range(longest - n)))
    batch = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}
    if positions:
        batch["position_ids"] = torch.tensor(positions)
    return batch


def pad_id(tokenizer) -> int:
    """The tokenizer's pad id, falling back to EOS (safe: padding is masked by position)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def prepare_data(profile, tokenizer):
    """(encoded training examples, encoded dev examples, encoded test examples, data report) for a profile; with
    ``train.packing`` the training examples are packed rows (``packing.pack``).

    Dev and test records come from the bundled held-out file, or are split off the profile's own source
    (``splits.split_source``); records that cannot be used are skipped and counted in the report.
    """
    from .splits import split_source

    d = profile.data
    records, dev, test, report = split_source(d.source, profile.train.heldout_records, profile.train.seed,
                                              d.on_invalid, d.max_records)
    # one encoding per record: `length` is counted before truncation, so validation sees the real length
    encoded = [encode(r, tokenizer, profile.seq_len, d.template) for r in records]
    kept, report = validate(records, [e["length"] for e in encoded], profile.seq_len, d.on_long, report)
    if not kept:
        raise DataError(f"검증 후 남은 학습 레코드가 없습니다 ({report.summary()}). seq_len(지금 {profile.seq_len})을 "
                        "늘리거나 data.on_long을 'truncate'로 바꾸세요")
    by_record = {id(r): e for r, e in zip(records, encoded, strict=True)}
    train = [by_record[id(r)] for r in kept]
    if profile.train.packing:  # rows of whole records (the report still counts records)
        from .packing import pack

        train = pack(train, profile.seq_len)
    dev_set, test_set = ([encode(r, tokenizer, profile.seq_len, d.template) for r in part] for part in (dev, test))
    return train, dev_set, test_set, report


def validate(records: list[dict], lengths: list[int] | None = None, max_len: int | None = None,
             on_long: str = "drop", report: DataReport | None = None) -> tuple[list[dict], DataReport]:
    """Drop records longer than ``max_len`` tokens (or keep them to be truncated), counting each in ``report``.

    ``lengths`` are each record's token counts (prompt + answer + EOS); ``report`` (from reading) names records by
    their place in the source, else by their index in ``records``. Duplicates and malformed records were
    already skipped when the records were read (``normalize``).
    """
    if on_long not in ON_LONG:
        raise DataError(f"on_long={on_long!r}: choose 'drop' or 'truncate'")
    if report is None:
        report = DataReport(total=len(records), where=[f"record {i}" for i in range(len(records))])
    where = report.where
    kept, kept_where = [], []
    for i, rec in enumerate(records):
        if lengths is not None and max_len is not None and lengths[i] > max_len:
            if on_long == "drop":
                report.skip(f"longer than {max_len} tokens", f"{where[i]}: {lengths[i]} 토큰")
                continue
            report.truncated += 1
        kept.append(rec)
        kept_where.append(where[i])
    report.kept, report.where = len(kept), kept_where
    return kept, report
