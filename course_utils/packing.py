"""Packing: several answer-masked records in one row of up to ``seq_len`` tokens, none seeing another.

At batch 1 a KoAlpaca record fills a small part of a 512-token row. Packing puts whole records side by side in a row
(first-fit decreasing by length), with ``position_ids`` restarting at 0 at each record. transformers builds a
block-diagonal causal mask from such position ids when no attention mask is given (``masking_utils.
find_packed_sequence_indices``), so no record attends to another, and ``loss.answer_loss_sum`` passes the position ids
instead of a mask for packed batches. The loss is unchanged: each record's first token is a prompt token (label
-100), so the last token of one record never learns to predict the next record.

Why our own ~20 lines: transformers' ``DataCollatorWithFlattening`` flattens a fixed number of records per batch into
one row with no cap at ``seq_len``; TRL's ``pack_dataset`` (best-fit decreasing) would make TRL a runtime dependency of
training (it is only the benchmarks' test extra). The masking itself is the library's.
"""
from __future__ import annotations


def pack(examples: list[dict], seq_len: int) -> list[dict]:
    """Rows of whole records (each ``input_ids``/``labels`` from ``prompts.encode``), at most ``seq_len`` tokens each,
    filled first-fit in decreasing length; records keep their order inside a row. Each row: input_ids, labels,
    position_ids (0.. per record) and ``records`` (how many it holds)."""
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i]["input_ids"]), i))
    rows: list[list] = []  # [tokens used, record indices]
    for i in order:
        n = len(examples[i]["input_ids"])
        if n > seq_len:
            raise ValueError(f"record {i} has {n} tokens, more than seq_len={seq_len}: validate or truncate first")
        row = next((r for r in rows if r[0] + n <= seq_len), None)
        if row is None:
            rows.append([n, [i]])
        else:
            row[0] += n
            row[1].append(i)
    packed = []
    for _, members in rows:
        ids, labels, positions = [], [], []
        for i in sorted(members):
            ids += examples[i]["input_ids"]
            labels += examples[i]["labels"]
            positions += list(range(len(examples[i]["input_ids"])))
        packed.append({"input_ids": ids, "labels": labels, "position_ids": positions, "records": len(members)})
    return packed


def usage(rows: list[dict], seq_len: int) -> float:
    """Share of the ``len(rows) x seq_len`` token slots that hold a record's token (0..1)."""
    return sum(len(r["input_ids"]) for r in rows) / (len(rows) * seq_len) if rows else 0.0
