"""The two transformers objects notebook 05 writes: the profile's ``TrainingArguments`` and ``AnswerOnlyTrainer``.

``AnswerOnlyTrainer`` is transformers' ``Trainer`` with one idea changed: the loss is the cross-entropy of the
answer tokens only (``loss.answer_loss_sum``), and the output layer is applied only where a row has an answer
token. Its evaluation is the exact held-out answer-token loss (``loss.heldout_loss``). Import this module after
``notebook.quiet_libraries()``: transformers' Trainer imports bitsandbytes.
"""
from __future__ import annotations

import time
from pathlib import Path

from transformers import Trainer, TrainingArguments

from .hardware import profile_device
from .loss import answer_loss_sum, heldout_loss
from .prompts import collate


class AnswerOnlyTrainer(Trainer):
    """``Trainer`` whose training loss is answer-token cross-entropy (no logits at masked positions) and whose
    evaluation is ``heldout_loss`` of ``eval_dataset``; ``pad_id`` pads the evaluation batches."""

    loss_is_scaled_for_ga = True

    def __init__(self, *args, pad_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        # compute_loss divides by num_items_in_batch, the answer tokens of the whole optimizer step, whatever the
        # model class declares: without it the Trainer passes None and the loss becomes a mean of micro-batch means,
        # so with grad-accum a 1-token answer weighs as much as a 16-token one (tests/test_grad_accumulation.py)
        self.model_accepts_loss_kwargs = True
        self.pad_id = pad_id
        self.eval_seconds = 0.0  # time spent evaluating inside train(): not training throughput

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, n = answer_loss_sum(model, inputs)
        if num_items_in_batch is None:  # not counted by the Trainer: normalize per micro-batch
            return loss / max(n, 1) / self.current_gradient_accumulation_steps
        loss = loss / num_items_in_batch  # answer tokens of the whole accumulated step
        if self.args.average_tokens_across_devices:
            loss = loss * self.accelerator.num_processes
        return loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        start = time.perf_counter()
        examples = self.eval_dataset if eval_dataset is None else eval_dataset
        metrics = {f"{metric_key_prefix}_loss": heldout_loss(self.model, examples, self.pad_id,
                                                             self.args.per_device_eval_batch_size)}
        self.eval_seconds += time.perf_counter() - start
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def recipe_arguments(profile) -> dict:
    """The arguments every course trainer takes from the profile's recipe: batch, accumulation, schedule, optimizer,
    precision, checkpointing, seeds and device. ``training_arguments`` (SFT) and ``preference.preference_config``
    (DPO/ORPO) both start from these."""
    t = profile.train
    cuda = profile_device(profile) == "cuda"
    return dict(
        per_device_train_batch_size=profile.batch_size,
        gradient_accumulation_steps=profile.grad_accum,
        lr_scheduler_type=t.lr_scheduler,
        logging_nan_inf_filter=False,  # the Trainer would log the previous mean instead: StopOnNaN must see it
        optim=profile.optimizer,
        fp16=cuda and profile.dtype == "float16",
        bf16=cuda and profile.dtype == "bfloat16",
        activation_checkpointing=profile.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if profile.gradient_checkpointing else None,
        remove_unused_columns=False,
        report_to=[],  # TensorBoard is added by train.training_callbacks with its folder inside the run folder
        seed=t.seed,
        data_seed=t.seed,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        disable_tqdm=True,  # progress is printed by monitoring.TextProgress
    )


def training_arguments(profile, checkpoint_dir: Path) -> TrainingArguments:
    """``TrainingArguments`` for the profile's recipe (notebook 05 writes the same call, argument by argument)."""
    t = profile.train
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        **recipe_arguments(profile),
        per_device_eval_batch_size=t.eval_batch_size,
        learning_rate=t.learning_rate,
        warmup_steps=t.warmup_steps,
        max_steps=t.max_steps or -1,
        num_train_epochs=t.epochs or 1,  # used only when max_steps is -1
        logging_steps=t.logging_steps,
        eval_strategy="steps",
        eval_steps=t.eval_steps,
        save_steps=t.save_steps,
        save_total_limit=2,  # the best checkpoint is always kept, plus the newest
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        # the default random order, not "group_by_length": transformers 5.23 draws the length-grouped order from torch's
        # global random state, re-seeded when a resumed run starts, so a run resumed in its second epoch or later
        # trained on another order than the uninterrupted one (tests/test_train.py); grouping saved 8 % (benchmark 1)
        neftune_noise_alpha=t.neftune_noise_alpha,
    )


def with_profile(args: TrainingArguments, profile, progress=print) -> TrainingArguments:
    """``args`` (notebook 05's cell: the recipe, gpu8gb's values, as in ``scripts/train.py``) with the values this
    profile changes relative to that recipe, each change printed. For the cell as written the result equals
    ``training_arguments(profile, args.output_dir)``; a value the learner edited and the profile does not change
    stays the learner's."""
    import dataclasses

    from .profiles import get_profile

    recipe = training_arguments(get_profile("gpu8gb"), Path(args.output_dir))
    want = training_arguments(profile, Path(args.output_dir))
    mine = args.to_dict()
    # a value the cell already has (its precision follows profile.torch_dtype: fp16 on a card without bf16) is no change
    changes = {name: pair for name, pair in argument_differences(recipe, want).items() if mine.get(name) != pair[1]}
    if not changes:
        progress(f"프로필 {profile.name}: 이 레시피를 그대로 씁니다.")
        return args
    progress(f"프로필 {profile.name}에서 바꾼 값 {len(changes)}개 (레시피 -> {profile.name}):")
    for name, (_, theirs) in changes.items():
        progress(f"  {name}: {mine.get(name)} -> {theirs}")
    return dataclasses.replace(args, **{name: getattr(want, name) for name in changes})


def argument_differences(a: TrainingArguments, b: TrainingArguments) -> dict:
    """Fields where two ``TrainingArguments`` differ: {name: (a's value, b's value)} (empty when they agree)."""
    da, db = a.to_dict(), b.to_dict()
    return {k: (da.get(k), db.get(k)) for k in sorted(set(da) | set(db)) if da.get(k) != db.get(k)}


class TokenCountingCollator:
    """Pads a batch (``prompts.collate``) and counts its real (non-pad) tokens, for training throughput."""

    def __init__(self, pad: int):
        self.pad = pad
        self.tokens = 0

    def __call__(self, features):
        batch = collate(features, self.pad)
        self.tokens += int(batch["attention_mask"].sum())
        return batch
