"""Train a LoRA adapter with the profile's recipe: transformers ``Trainer`` + peft (accelerate underneath).

    python -m course_utils.train --profile cpu --output outputs/05_training [--resume | --overwrite]
    python -m course_utils.train --profile gpu8gb --model phi-2 --output outputs/phi2   # the seed's --model_name
    python -m course_utils.train --profile gpu8gb --dataset_path data/koalpaca_10k.jsonl --num_epochs 3 \
        --batch_size 1 --gradient_accumulation_steps 16 --learning_rate 2e-4 --output_dir outputs/seed   # the seed's flags
    python -m course_utils.train --profile cpu --set lora.r=16 --set train.eval_steps=20 --output outputs/r16

The same function runs in notebook 05, from the command line, and under ``accelerate launch``.
Loss is computed on answer tokens only, and the output layer is applied only at positions where
some row of the batch has an answer token: prompt and padding positions mostly never produce
logits (for Gemma's 262k vocabulary that is most of the work). The held-out records are evaluated
every ``eval_steps`` (the Trainer's schedule, our exact answer-token loss); checkpoints are written every
``save_steps``, the best one by held-out loss is kept and becomes the adapter. TensorBoard event files go
to ``<output>/tensorboard``. A run folder is never destroyed implicitly (``course_utils.runs``).
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

from .loss import answer_loss_sum, heldout_loss
from .prompts import collate, pad_id, prepare_data
from .runs import check_output_folder, check_writable, last_complete_checkpoint


@dataclass
class TrainResult:
    adapter_dir: Path
    global_step: int
    heldout_loss_before: float  # mean answer-token cross-entropy (nats/token) on held-out records
    heldout_loss_after: float
    train_seconds: float  # wall time of the Trainer's loop, held-out evaluations included
    tokens_per_second: float  # real (non-pad) tokens processed per second of training (evaluation time excluded)
    peak_memory_bytes: int  # CUDA max_memory_allocated, or the process's peak RSS on a CPU
    log_history: list = field(default_factory=list)
    data_report: object = None
    resumed_from: str | None = None
    best_step: int | None = None  # the checkpoint the adapter came from (lowest held-out loss)
    interrupted: bool = False  # stopped by Ctrl-C after saving a checkpoint
    moved_to: str | None = None  # where an earlier run in the same folder was moved (overwrite)

    @property
    def loss_drop(self) -> float:
        return 1.0 - self.heldout_loss_after / self.heldout_loss_before


def _trainer_class():
    from transformers import Trainer

    class AnswerOnlyTrainer(Trainer):
        """Trainer whose loss is answer-token cross-entropy without logits at masked positions, and whose
        evaluation is the exact held-out answer-token loss (``heldout_loss``) of ``eval_dataset``."""

        loss_is_scaled_for_ga = True
        pad_id = 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, n = answer_loss_sum(model, inputs)
            if num_items_in_batch is None:  # not counted by the Trainer: normalize per micro-batch
                return loss / max(n, 1) / self.current_gradient_accumulation_steps
            loss = loss / num_items_in_batch
            if self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes
            return loss

        eval_seconds = 0.0  # time spent evaluating inside train(): not training throughput

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            start = time.perf_counter()
            examples = self.eval_dataset if eval_dataset is None else eval_dataset
            metrics = {f"{metric_key_prefix}_loss": heldout_loss(self.model, examples, self.pad_id,
                                                                 self.args.per_device_eval_batch_size)}
            self.eval_seconds += time.perf_counter() - start
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return AnswerOnlyTrainer


def training_arguments(profile, checkpoint_dir: Path, max_steps: int | None = None):
    """``TrainingArguments`` for the profile's recipe (``max_steps`` overrides the profile's steps or epochs)."""
    from transformers import TrainingArguments

    t = profile.train
    cuda = profile.device == "cuda" and torch.cuda.is_available()
    steps = max_steps or t.max_steps
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=profile.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=profile.grad_accum,
        learning_rate=t.learning_rate,
        warmup_steps=t.warmup_steps,
        lr_scheduler_type=t.lr_scheduler,
        max_steps=steps or -1,
        num_train_epochs=t.epochs or 1,  # used only when max_steps is -1
        logging_steps=t.logging_steps,
        logging_nan_inf_filter=False,  # the Trainer would log the previous mean instead: StopOnNaN must see it
        eval_strategy="steps",
        eval_steps=t.eval_steps,
        save_steps=t.save_steps,
        save_total_limit=2,  # the best checkpoint is always kept, plus the newest
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        optim=profile.optimizer,
        fp16=cuda and profile.dtype == "float16",
        bf16=cuda and profile.dtype == "bfloat16",
        activation_checkpointing=profile.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if profile.gradient_checkpointing else None,
        train_sampling_strategy="group_by_length",
        remove_unused_columns=False,
        report_to=[],  # TensorBoard is added by train() with its folder inside the run folder
        seed=t.seed,
        data_seed=t.seed,
        neftune_noise_alpha=t.neftune_noise_alpha,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        disable_tqdm=True,  # progress is printed by monitoring.TextProgress
    )


def train(profile, output_dir: str | Path, resume: bool = False, if_exists: str = "refuse",
          stop_after: int | None = None, callbacks: list | None = None, progress=print) -> TrainResult:
    """Train the profile's LoRA adapter; return measured results (see ``TrainResult``).

    ``output_dir`` gets ``checkpoints/``, ``tensorboard/`` and, when training reaches its last step, ``adapter/``
    (the best checkpoint by held-out loss). ``resume=True`` continues from the last complete checkpoint.
    A fresh run in a folder that holds an earlier run: ``if_exists="refuse"`` (default) stops before any work,
    ``"overwrite"`` moves the earlier run to ``<output>.previous-<time>``, ``"replace"`` deletes it (notebooks
    re-running their own demo folder). ``stop_after=k`` stops after step k, as an interruption would.
    """
    from .notebook import quiet_libraries

    quiet_libraries()  # before transformers' Trainer imports bitsandbytes
    from transformers import TrainerCallback, set_seed
    from transformers.integrations import TensorBoardCallback

    from .adapter import adapter_metadata, save_adapter
    from .loading import load_profile_model, load_tokenizer
    from .lora import attach_lora
    from .monitoring import StopOnNaN, use_text_progress
    from .profiles import check_device
    from .runs import CtrlC, check_earlier_run, disk_full_error, move_aside
    from .vram_measure import peak_memory_bytes

    output_dir = Path(output_dir)
    checkpoint_dir = output_dir / "checkpoints"
    # everything that can be wrong is checked before the output folder is touched (bad input writes nothing)
    check_device(profile)
    check_output_folder(output_dir)
    earlier = check_earlier_run(output_dir, resume, if_exists)
    set_seed(profile.train.seed)
    tokenizer = load_tokenizer(profile.model)
    train_set, heldout, report = prepare_data(profile, tokenizer)
    model = load_profile_model(profile)
    if profile.quantization != "none":
        from peft import prepare_model_for_kbit_training

        # fp32 norms, frozen base. Checkpointing is the Trainer's (TrainingArguments.activation_checkpointing): peft's
        # own switch would call transformers' deprecated gradient_checkpointing_enable, and with use_reentrant=False
        # it adds nothing else
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model.config.use_cache = False
    model = attach_lora(model, profile.lora)
    moved_to = None
    if earlier and not resume:
        if if_exists == "overwrite":
            moved_to = move_aside(output_dir)
            progress(f"the earlier run in {output_dir} ({earlier}) was moved to {moved_to}")
        else:
            shutil.rmtree(output_dir)
            progress(f"replaced the earlier run in {output_dir} ({earlier})")
    check_writable(output_dir)
    pad = pad_id(tokenizer)
    if report.note:
        progress(report.note)
    where = "the bundled held-out file" if report.source == "bundled" else f"a seeded split of {report.source}"
    progress(f"data: {report.summary()}; {len(train_set)} training records, {len(heldout)} held-out from {where}")
    resume_from = last_complete_checkpoint(checkpoint_dir) if resume else None
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

    tensorboard = TensorBoardCallback()
    tensorboard.logging_dir = str(output_dir / "tensorboard")  # the library's callback; it writes on rank 0 only
    ctrl_c = CtrlC()
    trainer = _trainer_class()(
        model=model, args=training_arguments(profile, checkpoint_dir), train_dataset=train_set, eval_dataset=heldout,
        data_collator=data_collator, callbacks=[StopAfter(), StopOnNaN(profile.dtype), ctrl_c.callback(), tensorboard,
                                                *(callbacks or [])])
    trainer.pad_id = pad
    use_text_progress(trainer, progress)
    start = time.perf_counter()
    try:
        with ctrl_c:
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except OSError as err:
        import errno

        if err.errno == errno.ENOSPC:
            raise disk_full_error(err, checkpoint_dir, trainer.state.global_step) from None
        raise
    seconds = time.perf_counter() - start
    step = trainer.state.global_step
    best = trainer.state.best_model_checkpoint
    best_step = int(Path(best).name.split("-")[1]) if best else None
    evals = {e["step"]: e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e}
    # the model in memory is the best checkpoint (load_best_model_at_end), whose held-out loss was just measured
    loss_after = evals[best_step] if best_step in evals else heldout_loss(model, heldout, pad,
                                                                         profile.train.eval_batch_size)
    which = f"best checkpoint, step {best_step}" if best_step is not None and best_step != step else f"step {step}"
    progress(f"held-out answer loss after {step} steps ({which}): {loss_after:.4f} (perplexity {math.exp(loss_after):.1f})")
    training = seconds - trainer.eval_seconds
    result = TrainResult(output_dir / "adapter", step, loss_before, loss_after, seconds,
                         counter["tokens"] / training if training > 0 else 0.0, peak_memory_bytes(),
                         trainer.state.log_history, report, str(resume_from) if resume_from else None,
                         best_step, ctrl_c.pressed, str(moved_to) if moved_to else None)
    finished = step >= trainer.state.max_steps and not ctrl_c.pressed
    saves = finished and trainer.is_world_process_zero()  # one writer under DDP
    if saves:
        save_adapter(model, result.adapter_dir, metadata=adapter_metadata(
            profile, tokenizer, global_step=step, best_step=best_step, heldout_loss_before=loss_before,
            heldout_loss_after=loss_after, train_records=report.kept, data_source=report.source,
            train_seconds=seconds, tokens_per_second=result.tokens_per_second, world_size=trainer.args.world_size))
    if ctrl_c.pressed:
        progress(f"stopped by Ctrl-C at step {step}; checkpoint-{step} is saved in {checkpoint_dir}. Continue with: "
                 f"python -m course_utils.train --profile {profile.name} --output {output_dir} --resume")
    if trainer.args.world_size > 1:
        progress(f"rank {trainer.args.process_index} of {trainer.args.world_size}: finished at step {step}; "
                 + (f"adapter saved to {result.adapter_dir}" if saves else "the adapter is rank 0's to save"))
    result.model, result.tokenizer = model, tokenizer
    return result


def main(argv=None) -> None:
    from .notebook import quiet_libraries

    quiet_libraries()  # first: the imports below load bitsandbytes
    from .monitoring import TrainingDiverged
    from .profiles import PROFILES_FILE, default_profile_name, get_profile, parse_setting, with_model, with_overrides

    parser = argparse.ArgumentParser(
        prog="python -m course_utils.train", description="Train the course's LoRA adapter with a profile's recipe. "
        "Every recipe value can be changed here; each change is validated like a profiles YAML, before anything runs.")
    parser.add_argument("--profile", default=default_profile_name(), help="smoke, demo, cpu or gpu8gb")
    parser.add_argument("--model", "--model_name", dest="model", default=None,
                        help="a registry model instead of the profile's (gpt2, tinyllama-1.1b, phi-2, gemma-3-270m, ...)")
    parser.add_argument("--output", "--output_dir", dest="output", default="outputs/train",
                        help="folder for checkpoints/, tensorboard/ and adapter/")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    choice.add_argument("--overwrite", action="store_true",
                        help="start afresh; an earlier run in --output is moved to <output>.previous-<time>")
    parser.add_argument("--profiles", default=str(PROFILES_FILE), help="a profiles YAML file (default: the course's)")
    seed = parser.add_argument_group("the seed's flags (each sets one profile value)")
    seed.add_argument("--dataset_path", help="data.source: a KoAlpaca .json/.jsonl file (e.g. from "
                      "python -m course_utils.prepare), a hub id, or bundled")
    seed.add_argument("--num_epochs", type=float, help="train.epochs (and train.max_steps null): passes over the data")
    seed.add_argument("--batch_size", type=int, help="batch_size: examples per forward pass")
    seed.add_argument("--gradient_accumulation_steps", type=int, help="grad_accum: forward passes per optimizer step")
    seed.add_argument("--learning_rate", type=float, help="train.learning_rate")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="any other profile value, e.g. --set lora.r=16 --set train.eval_steps=50 (repeatable)")
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile, args.profiles)
        if args.model:
            profile = with_model(profile, args.model)
        overrides = [(key, value) for key, value in (
            ("data.source", args.dataset_path), ("train.epochs", args.num_epochs), ("batch_size", args.batch_size),
            ("grad_accum", args.gradient_accumulation_steps), ("train.learning_rate", args.learning_rate))
            if value is not None]
        if args.num_epochs is not None:
            overrides.append(("train.max_steps", None))  # the seed's recipe is counted in epochs
        overrides += [parse_setting(text) for text in args.set]
        if overrides:
            profile = with_overrides(profile, overrides)
        result = train(profile, args.output, resume=args.resume, if_exists="overwrite" if args.overwrite else "refuse")
    except (ValueError, OSError, TrainingDiverged) as err:  # ProfileError, DataError, RunExistsError, disk full...
        raise SystemExit(f"error: {err}") from None
    summary = {k: v for k, v in asdict(result).items() if k not in ("log_history", "data_report")}
    summary["adapter_dir"] = str(result.adapter_dir)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2, default=str))
    if result.interrupted:
        raise SystemExit(130)  # the conventional status of a program stopped by Ctrl-C


if __name__ == "__main__":
    main()

