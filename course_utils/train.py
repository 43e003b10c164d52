"""Train a LoRA adapter with the profile's recipe: transformers ``Trainer`` + peft (accelerate underneath).

    python -m course_utils.train --profile cpu --output outputs/05_training

The same function runs in notebook 05, from the command line, and under ``accelerate launch``.
Loss is computed on answer tokens only, and the output layer is applied only at positions where
some row of the batch has an answer token: prompt and padding positions mostly never produce
logits (for Gemma's 262k vocabulary that is most of the work). Checkpoints are written every ``save_steps``; ``resume=True`` continues from the last
complete one. The adapter is saved in the standard PEFT format plus ``course_adapter.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .prompts import IGNORE, collate, encode, pad_id
from .runs import check_output_folder, check_writable, last_complete_checkpoint


@dataclass
class TrainResult:
    adapter_dir: Path
    global_step: int
    heldout_loss_before: float  # mean answer-token cross-entropy (nats/token) on held-out records
    heldout_loss_after: float
    train_seconds: float
    tokens_per_second: float  # real (non-pad) tokens processed per second of training
    peak_memory_bytes: int  # CUDA max_memory_allocated, or the process's peak RSS on a CPU
    log_history: list = field(default_factory=list)
    data_report: object = None
    resumed_from: str | None = None

    @property
    def loss_drop(self) -> float:
        return 1.0 - self.heldout_loss_after / self.heldout_loss_before


def answer_loss_sum(model, batch) -> tuple[torch.Tensor, int]:
    """(sum of cross-entropy over answer tokens, number of answer tokens) for a padded batch.

    Asks the model for logits only at positions whose next token is an answer token in some row of
    the batch (``logits_to_keep``), so prompt and padding positions mostly never reach the output
    layer (for Gemma's 262k vocabulary that is most of the work). Everything runs inside the
    model's own forward, so DDP, DeepSpeed and FSDP wrappers see it.
    """
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE
    positions = keep.any(dim=0).nonzero().squeeze(1)  # hidden state t predicts token t + 1
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=positions,
                   use_cache=False).logits
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels[:, positions].reshape(-1),
                           ignore_index=IGNORE, reduction="sum")
    return loss, int(keep.sum())


@torch.no_grad()
def heldout_loss(model, examples: list[dict], pad: int, batch_size: int = 8) -> float:
    """Mean cross-entropy per answer token (nats) over ``examples`` (encoded records)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    for start in range(0, len(order), batch_size):
        batch = collate([examples[i] for i in order[start:start + batch_size]], pad)
        batch = {k: v.to(device) for k, v in batch.items()}
        loss, n = answer_loss_sum(model, batch)
        total, count = total + float(loss), count + n
    model.train(was_training)
    return total / count


def _trainer_class():
    from transformers import Trainer

    class AnswerOnlyTrainer(Trainer):
        """Trainer whose loss is answer-token cross-entropy without logits at masked positions."""

        loss_is_scaled_for_ga = True

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, n = answer_loss_sum(model, inputs)
            if num_items_in_batch is None:  # not counted by the Trainer: normalize per micro-batch
                return loss / max(n, 1) / self.current_gradient_accumulation_steps
            loss = loss / num_items_in_batch
            if self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes
            return loss

    return AnswerOnlyTrainer


def prepare_data(profile, tokenizer):
    """Encoded training and held-out examples + the validation report for a profile."""
    from .data import load_heldout, load_source, validate

    records = load_source(profile.data.source)
    if profile.data.max_records:
        records = records[: profile.data.max_records]
    # one encoding per record: `length` is counted before truncation, so validation sees the real length
    encoded = [encode(r, tokenizer, profile.seq_len, profile.data.template) for r in records]
    kept, report = validate(records, [e["length"] for e in encoded], profile.seq_len, profile.data.on_long)
    if not kept:
        from .data import DataError

        raise DataError(f"No training records left after validation ({dict(report.dropped)}: "
                        f"{'; '.join(report.notes[:3])}); raise seq_len (now {profile.seq_len}) or set "
                        f"data.on_long to 'truncate'")
    by_record = {id(r): e for r, e in zip(records, encoded, strict=True)}
    train = [by_record[id(r)] for r in kept]
    held = load_heldout()[: profile.train.heldout_records]
    heldout = [encode(r, tokenizer, profile.seq_len, profile.data.template) for r in held]
    return train, heldout, report


def training_arguments(profile, checkpoint_dir: Path, max_steps: int):
    """``TrainingArguments`` for the profile's recipe."""
    from transformers import TrainingArguments

    t = profile.train
    cuda = profile.device == "cuda" and torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=profile.batch_size,
        gradient_accumulation_steps=profile.grad_accum,
        learning_rate=t.learning_rate,
        warmup_steps=t.warmup_steps,
        lr_scheduler_type=t.lr_scheduler,
        max_steps=max_steps,
        logging_steps=t.logging_steps,
        save_steps=t.save_steps,
        save_total_limit=2,
        optim=profile.optimizer,
        fp16=cuda and profile.dtype == "float16",
        bf16=cuda and profile.dtype == "bfloat16",
        activation_checkpointing=profile.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if profile.gradient_checkpointing else None,
        train_sampling_strategy="group_by_length",
        remove_unused_columns=False,
        report_to=[],
        seed=t.seed,
        data_seed=t.seed,
        neftune_noise_alpha=t.neftune_noise_alpha,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        disable_tqdm=True,  # progress is printed by monitoring.TextProgress
    )


def train(profile, output_dir: str | Path, resume: bool = False, stop_after: int | None = None,
          callbacks: list | None = None, progress=print) -> TrainResult:
    """Train the profile's LoRA adapter; return measured results (see ``TrainResult``).

    ``output_dir`` gets ``checkpoints/`` and, when training reaches ``max_steps``, ``adapter/``.
    ``resume=True`` continues from the last complete checkpoint (fresh start when there is none).
    ``stop_after=k`` stops after step k, as an interruption would (use a multiple of save_steps).
    """
    from transformers import TrainerCallback, set_seed

    from .adapter import adapter_metadata, save_adapter
    from .loading import load_profile_model, load_tokenizer
    from .lora import attach_lora
    from .monitoring import use_text_progress
    from .notebook import quiet_libraries
    from .vram_measure import peak_memory_bytes

    quiet_libraries()
    output_dir = Path(output_dir)
    checkpoint_dir = output_dir / "checkpoints"
    set_seed(profile.train.seed)
    tokenizer = load_tokenizer(profile.model)
    # everything that can be wrong is checked before the output folder is touched (bad input writes nothing)
    train_set, heldout, report = prepare_data(profile, tokenizer)
    check_output_folder(output_dir)
    model = load_profile_model(profile)
    if profile.quantization != "none":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=profile.gradient_checkpointing)
    model.config.use_cache = False
    model = attach_lora(model, profile.lora)
    check_writable(output_dir)
    pad = pad_id(tokenizer)
    progress(f"data: {report.kept} training records ({report.total} read), {len(heldout)} held-out")
    resume_from = last_complete_checkpoint(checkpoint_dir) if resume else None
    if not resume and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)  # a fresh run never mixes with old checkpoints
    loss_before = heldout_loss(model, heldout, pad, profile.train.eval_batch_size)  # the adapter is still zero here
    if resume_from:
        progress(f"resuming from {resume_from.name}; held-out answer loss of the base model (no adapter): "
                 f"{loss_before:.4f} (perplexity {math.exp(loss_before):.1f})")
    else:
        progress(f"held-out answer loss before training: {loss_before:.4f} (perplexity {math.exp(loss_before):.1f})")

    counter = {"tokens": 0}

    def data_collator(features):
        batch = collate(features, pad)
        counter["tokens"] += int(batch["attention_mask"].sum())
        return batch

    class StopAfter(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if stop_after is not None and state.global_step >= stop_after:
                control.should_training_stop = True

    trainer = _trainer_class()(
        model=model, args=training_arguments(profile, checkpoint_dir, profile.train.max_steps),
        train_dataset=train_set, data_collator=data_collator, callbacks=[StopAfter(), *(callbacks or [])],
    )
    use_text_progress(trainer, progress)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.perf_counter() - start
    step = trainer.state.global_step
    loss_after = heldout_loss(model, heldout, pad, profile.train.eval_batch_size)
    progress(f"held-out answer loss after {step} steps: {loss_after:.4f} (perplexity {math.exp(loss_after):.1f})")
    result = TrainResult(output_dir / "adapter", step, loss_before, loss_after, seconds,
                         counter["tokens"] / seconds if seconds > 0 else 0.0, peak_memory_bytes(),
                         trainer.state.log_history, report, str(resume_from) if resume_from else None)
    saves = step >= profile.train.max_steps and trainer.is_world_process_zero()  # one writer under DDP
    if saves:
        save_adapter(model, result.adapter_dir, metadata=adapter_metadata(
            profile, tokenizer, global_step=step, heldout_loss_before=loss_before, heldout_loss_after=loss_after,
            train_records=report.kept, train_seconds=seconds, tokens_per_second=result.tokens_per_second,
            world_size=trainer.args.world_size))
    if trainer.args.world_size > 1:
        progress(f"rank {trainer.args.process_index} of {trainer.args.world_size}: finished at step {step}; "
                 + (f"adapter saved to {result.adapter_dir}" if saves else "the adapter is rank 0's to save"))
    result.model, result.tokenizer = model, tokenizer
    return result


def main(argv=None) -> None:
    from .profiles import PROFILES_FILE, default_profile_name, get_profile

    parser = argparse.ArgumentParser(description="Train the course's LoRA adapter with a profile's recipe.")
    parser.add_argument("--profile", default=default_profile_name(), help="smoke, cpu or gpu8gb")
    parser.add_argument("--output", default="outputs/train", help="folder for checkpoints/ and adapter/")
    parser.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    parser.add_argument("--profiles", default=str(PROFILES_FILE), help="a profiles YAML file (default: the course's)")
    args = parser.parse_args(argv)
    try:
        result = train(get_profile(args.profile, args.profiles), args.output, resume=args.resume)
    except (ValueError, OSError) as err:  # ProfileError, DataError, bad LoRA targets, unwritable output...
        raise SystemExit(f"error: {err}") from None
    summary = {k: v for k, v in asdict(result).items() if k not in ("log_history", "data_report")}
    summary["adapter_dir"] = str(result.adapter_dir)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()

