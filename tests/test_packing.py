"""Packing records into rows without cross-contamination (issue 26, item 1)."""
import pytest
import torch
from conftest import randomize_lora_b, tiny_model
from test_grad_accumulation import gemma3_tiny, uneven_records

from course_utils.loss import answer_loss_sum
from course_utils.packing import pack, usage
from course_utils.prompts import collate

MODELS = {"llama (tinyllama-shaped)": lambda: tiny_model("tinyllama-1.1b"), "gemma-3 tiny": gemma3_tiny}


def adapted(make):
    from course_utils.lora import attach_lora
    from course_utils.profiles import get_profile

    torch.manual_seed(0)
    model = randomize_lora_b(attach_lora(make(), get_profile("smoke").lora), seed=1, std=0.02)
    return model.eval()


def test_rows_hold_whole_records_within_seq_len_and_positions_restart():
    records = uneven_records(vocab=1000)
    rows = pack(records, seq_len=64)
    assert sum(r["records"] for r in rows) == len(records) and all(len(r["input_ids"]) <= 64 for r in rows)
    assert sorted(t for r in rows for t in r["input_ids"]) == sorted(t for e in records for t in e["input_ids"])
    for row in rows:
        starts = [i for i, p in enumerate(row["position_ids"]) if p == 0]
        assert len(starts) == row["records"] and starts[0] == 0
        for a, b in zip(starts, [*starts[1:], len(row["position_ids"])], strict=True):
            assert row["position_ids"][a:b] == list(range(b - a))  # 0, 1, ... within each record
            assert row["labels"][a] == -100  # a record's first token is never a target: no cross-record label
    assert usage(rows, 64) > usage(records, 64) * 3
    with pytest.raises(ValueError, match="more than seq_len=8"):
        pack(records, seq_len=8)


@pytest.mark.parametrize("name", MODELS)
def test_a_packed_rows_answer_loss_is_the_sum_of_its_records_losses(name):
    model = adapted(MODELS[name])
    records = uneven_records(vocab=1000)
    rows = pack(records, seq_len=64)
    with torch.no_grad():
        packed = sum(float(answer_loss_sum(model, collate([r], 0))[0]) for r in rows)
        packed_batch = float(answer_loss_sum(model, collate(rows, 0))[0])  # several rows, padded, in one batch
        alone = sum(float(answer_loss_sum(model, collate([e], 0))[0]) for e in records)
    assert packed == pytest.approx(alone, rel=1e-5) and packed_batch == pytest.approx(alone, rel=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_a_records_logits_do_not_change_when_its_row_mates_do(name):
    """The record sits last in its row, after three others: under a plain causal mask it would attend to them."""
    model = adapted(MODELS[name])
    records = uneven_records(vocab=1000)
    target, n = records[5], len(records[5]["input_ids"])

    def logits_of_target(mates, plain_mask=False):
        row = pack([*mates, target], seq_len=512)
        assert len(row) == 1 and row[0]["input_ids"][-n:] == target["input_ids"]  # last in the row
        batch = collate(row, 0)
        masking = {"attention_mask": batch["attention_mask"]} if plain_mask else {
            "position_ids": batch["position_ids"], "attention_mask": None}
        with torch.no_grad():  # no KV cache: transformers reads packing from position ids only when there is none
            return model(input_ids=batch["input_ids"], **masking, use_cache=False).logits[0, -n:]

    with torch.no_grad():
        alone = model(input_ids=torch.tensor([target["input_ids"]])).logits[0]
    assert torch.allclose(logits_of_target(records[:3]), alone, atol=1e-5)
    assert torch.allclose(logits_of_target(uneven_records(vocab=1000, seed=7)[:3]), alone, atol=1e-5)
    assert not torch.allclose(logits_of_target(records[:3], plain_mask=True), alone, atol=1e-3)  # the check can fail
