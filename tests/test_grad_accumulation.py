"""Gradient accumulation adds up: batch 1 x accumulation 16 gives the update of batch 16 x 1 (issue 26, item 3).

The course's loss is the mean over *answer tokens* of one optimizer step, and answers have uneven lengths, so the
per-micro-batch mean that a Trainer falls back to without ``num_items_in_batch`` (transformers before PR #34191;
Gemma-3 without loss kwargs, unsloth#4725) would weight a 1-token answer like a 16-token one. One optimizer step is
taken both ways over the same 16 records; the LoRA gradients just before the optimizer steps must agree.
"""
import dataclasses

import pytest
import torch
from conftest import gradient_mismatches, randomize_lora_b
from transformers import TrainerCallback, TrainingArguments

from course_utils.lora import attach_lora
from course_utils.models import MODELS, build_config
from course_utils.profiles import get_profile
from course_utils.prompts import collate
from course_utils.trainer import AnswerOnlyTrainer

RECORDS = 16


def uneven_records(vocab: int, seed: int = 0) -> list[dict]:
    """16 encoded records: prompts of 4-11 tokens, answers of 1 to 16 tokens (one of each length)."""
    g = torch.Generator().manual_seed(seed)
    records = []
    for i in range(RECORDS):
        prompt, answer = 4 + i % 8, 1 + (i * 7) % RECORDS
        ids = torch.randint(3, vocab, (prompt + answer,), generator=g).tolist()
        records.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return records


def gemma3_tiny():
    """A Gemma-3-shaped model (its config, sliding window and tied embedding) with tiny numbers."""
    from transformers import AutoModelForCausalLM

    small = {"vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "query_pre_attn_scalar": 16}
    spec = dataclasses.replace(MODELS["gemma-3-270m"], config={**MODELS["gemma-3-270m"].config, **small})
    return AutoModelForCausalLM.from_config(build_config(spec))


def smoke_model():
    from course_utils.loading import load_model

    return load_model(get_profile("smoke").model)


class GradientsBeforeStep(TrainerCallback):
    """Keeps a copy of every trainable gradient just before the (first) optimizer step."""

    def __init__(self):
        self.grads = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def one_step_gradients(make_model, records, batch_size: int, accumulation: int, folder, declares_loss_kwargs=True):
    torch.manual_seed(0)
    lora = dataclasses.replace(get_profile("smoke").lora, dropout=0.0)  # dropout masks would differ between runs
    model = randomize_lora_b(attach_lora(make_model(), lora), seed=1, std=0.02)  # B = 0 gives A no gradient
    if not declares_loss_kwargs:  # a model class that does not take num_items_in_batch (Gemma-3 in unsloth#4725)
        model.get_base_model().accepts_loss_kwargs = False
    grads = GradientsBeforeStep()
    args = TrainingArguments(output_dir=str(folder), per_device_train_batch_size=batch_size,
                             gradient_accumulation_steps=accumulation, max_steps=1, learning_rate=1e-3,
                             max_grad_norm=0.0, report_to=[], use_cpu=True, disable_tqdm=True, save_strategy="no",
                             remove_unused_columns=False, dataloader_num_workers=0, seed=0, data_seed=0)
    trainer = AnswerOnlyTrainer(model=model, args=args, train_dataset=records, pad_id=0,
                                data_collator=lambda f: collate(f, 0), callbacks=[grads])
    trainer.train()
    assert trainer.state.global_step == 1 and grads.grads
    return grads.grads


@pytest.mark.parametrize("make_model, declares", [(smoke_model, True), (gemma3_tiny, True), (gemma3_tiny, False)],
                         ids=["smoke model", "gemma-3 tiny", "gemma-3 tiny, no loss kwargs"])
def test_batch_1_with_accumulation_16_is_batch_16(make_model, declares, tmp_path):
    records = uneven_records(vocab=1000)
    assert len({sum(label != -100 for label in r["labels"]) for r in records}) == RECORDS  # all lengths differ
    whole = one_step_gradients(make_model, records, RECORDS, 1, tmp_path / "a", declares)
    accumulated = one_step_gradients(make_model, records, 1, RECORDS, tmp_path / "b", declares)
    assert gradient_mismatches(accumulated, whole, rel=1e-4) == []


def test_the_comparison_sees_a_per_micro_batch_mean():
    """What the test guards against: averaging each micro-batch's mean gives a different gradient here."""
    records = uneven_records(vocab=1000)
    answers = torch.tensor([sum(label != -100 for label in r["labels"]) for r in records], dtype=torch.float64)
    token_weighted = answers / answers.sum()  # each record's weight in the course's loss
    per_batch_mean = torch.full((RECORDS,), 1.0 / RECORDS, dtype=torch.float64)
    assert float((token_weighted - per_batch_mean).abs().max()) > 0.05
