"""Activation checkpointing trades time for memory and changes nothing else (issue 41).

The ``demo`` profile trains with it on since benchmark 7 showed a training step's activations were most of 05, 09 and
10's peak. The profile's comment says the gradients stay the same, LoRA dropout included, because the recomputed
forward replays the random state of the first one. These tests hold the recipe to that claim: three optimizer steps
with and without checkpointing, from the same seed, with dropout on, end at the same LoRA weights.
"""
import dataclasses

import torch
from test_grad_accumulation import gemma3_tiny, uneven_records
from transformers import TrainingArguments

from course_utils.lora import attach_lora
from course_utils.profiles import get_profile
from course_utils.prompts import collate
from course_utils.trainer import AnswerOnlyTrainer, recipe_arguments


def lora_after_three_steps(folder, checkpointing: bool, replay_rng: bool = True) -> dict:
    torch.manual_seed(0)
    lora = dataclasses.replace(get_profile("demo").lora, dropout=0.3)  # dropout on: its masks must be replayed
    model = attach_lora(gemma3_tiny(), lora)
    recipe = recipe_arguments(dataclasses.replace(get_profile("demo"), gradient_checkpointing=checkpointing))
    if not replay_rng:  # what the claim rests on: the recomputed forward draws the first one's dropout masks
        recipe["activation_checkpointing_kwargs"] = {**recipe["activation_checkpointing_kwargs"],
                                                     "preserve_rng_state": False}
    args = TrainingArguments(output_dir=str(folder), **{**recipe, "seed": 0, "data_seed": 0,
                                                        "per_device_train_batch_size": 4},
                             max_steps=3, learning_rate=1e-2, save_strategy="no")
    trainer = AnswerOnlyTrainer(model=model, args=args, train_dataset=uneven_records(vocab=1000), pad_id=0,
                                data_collator=lambda f: collate(f, 0))
    trainer.train()
    assert trainer.state.global_step == 3
    assert model.get_base_model().is_activation_checkpointing == checkpointing
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_the_demo_recipe_checkpoints_activations():
    recipe = recipe_arguments(get_profile("demo"))
    assert recipe["activation_checkpointing"] is True
    assert recipe["activation_checkpointing_kwargs"] == {"use_reentrant": False}


def test_checkpointing_gives_the_same_lora_weights_with_dropout_on(tmp_path):
    plain = lora_after_three_steps(tmp_path / "plain", checkpointing=False)
    checkpointed = lora_after_three_steps(tmp_path / "checkpointed", checkpointing=True)
    assert plain.keys() == checkpointed.keys() and plain
    worst = max((plain[n] - checkpointed[n]).abs().max().item() for n in plain)
    assert worst <= 1e-6, f"checkpointing changed a LoRA weight by {worst:.3g}"
    # the comparison can fail: recomputed without the replayed random state, dropout draws other masks in the
    # backward pass than in the forward, and the weights move apart
    unreplayed = lora_after_three_steps(tmp_path / "unreplayed", checkpointing=True, replay_rng=False)
    assert max((plain[n] - unreplayed[n]).abs().max().item() for n in plain) > 1e-4
