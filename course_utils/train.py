"""Train a LoRA adapter with the profile's recipe: transformers ``Trainer`` + peft (accelerate underneath).

    python -m course_utils.train --profile cpu --output outputs/05_training [--resume | --overwrite]
    python -m course_utils.train --profile gpu8gb --model phi-2 --output outputs/phi2   # the seed's --model_name
    python -m course_utils.train --profile gpu8gb --dataset_path data/koalpaca_10k.jsonl --num_epochs 3 \
        --batch_size 1 --gradient_accumulation_steps 16 --learning_rate 2e-4 --output_dir outputs/seed   # the seed's flags
    python -m course_utils.train --profile cpu --set lora.r=16 --set train.eval_steps=20 --output outputs/r16

Four plain functions, which notebook 05 composes around the ``TrainingArguments(...)`` and ``AnswerOnlyTrainer(...)``
it writes (``course_utils.trainer``): ``prepare_run`` (checks, run-folder policy, seed, data, model + LoRA, test loss
before), ``monitoring.training_callbacks`` (TensorBoard/W&B, NaN stop, Ctrl-C, stop after a step), ``fit`` (the
Trainer's loop; Ctrl-C and a full disk handled), ``finish_run`` (the best checkpoint becomes ``<output>/adapter``).
``train`` composes them for the command line, ``accelerate launch`` and "train it when missing". A run folder is
never destroyed implicitly (``course_utils.runs``).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from .loss import record_losses, total_loss
from .prompts import pad_id, prepare_data
from .runs import check_output_folder, check_writable, guarded, last_complete_checkpoint, losses_before_training


@dataclass
class TrainResult:
    adapter_dir: Path
    global_step: int
    heldout_loss_before: float | None  # mean answer-token cross-entropy (nats/token) on the test records (only
    heldout_loss_after: float | None  # reported); after: the kept checkpoint (chosen on dev). None: a search trial,
    # or (after only) a run stopped by stop_after (it saves no adapter)
    train_seconds: float  # wall time of the Trainer's loop, held-out evaluations included
    tokens_per_second: float  # real (non-pad) tokens processed per second of training (evaluation time excluded)
    peak_memory_bytes: int  # CUDA max_memory_allocated of this run, or the process's peak RSS on a CPU
    log_history: list = field(default_factory=list)
    data_report: object = None
    resumed_from: str | None = None
    best_step: int | None = None  # the checkpoint the adapter came from (lowest loss on the dev records)
    interrupted: bool = False  # stopped by Ctrl-C after saving a checkpoint
    moved_to: str | None = None  # where an earlier run in the same folder was moved (overwrite)
    model: object = field(default=None, repr=False)  # the trained peft model in memory (the best checkpoint)
    tokenizer: object = field(default=None, repr=False)
    test_losses: dict | None = field(default=None, repr=False)  # per test record: {"base": before, "adapter": after}

    @property
    def loss_drop(self) -> float:
        return 1.0 - self.heldout_loss_after / self.heldout_loss_before

    def summary(self) -> dict:
        """The measured values as plain JSON-able data (no model, tokenizer, log or data report)."""
        skip = {"log_history", "data_report", "model", "tokenizer", "test_losses"}
        return {f.name: (str(v) if isinstance(v := getattr(self, f.name), Path) else v)
                for f in fields(self) if f.name not in skip}


@dataclass
class Run:
    """Everything ``prepare_run`` made ready: the model with its zero LoRA adapter, the data, the folders."""
    profile: object
    output_dir: Path
    model: object
    tokenizer: object
    train_set: list
    dev: list  # the Trainer's eval_dataset: the checkpoint kept is chosen on it
    test: list  # only reported (loss before and after), never chosen on
    data_report: object
    pad: int
    loss_before: float | None  # None: measure_test=False
    test_before: list | None = None  # each test record's (loss sum, answer tokens) before training
    resume_from: Path | None = None
    moved_to: Path | None = None
    ctrl_c: object = None

    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / "checkpoints"


def prepare_run(profile, output_dir: str | Path, resume: bool = False, if_exists: str = "refuse",
                progress=print, model=None, measure_test: bool = True) -> Run:
    """Check, seed, load and measure before training; an earlier run in ``output_dir`` is handled by ``if_exists``.

    Everything that can be wrong is checked before the output folder is touched (bad input writes nothing). A fresh
    run in a folder that holds an earlier one: ``"refuse"`` (default) stops, ``"overwrite"`` moves the earlier run to
    ``<output>.previous-<time>``, ``"replace"`` deletes it (notebooks re-running their own demo folder);
    ``resume=True`` continues from the last complete checkpoint.

    ``model``: a base with its fresh LoRA adapter built by the caller (notebook 05 writes the load itself, as
    ``scripts/train.py`` does); its adapter must be the profile's (``lora_mismatch``). None loads the profile's.
    ``measure_test=False`` (09's search trials, which return a dev loss): no test loss, before or after.
    """
    from transformers import set_seed

    from .adapter import save_adapter
    from .hardware import check_device, for_this_card
    from .loading import load_profile_model, load_tokenizer
    from .lora import attach_lora
    from .memory import reset_peak
    from .runs import CtrlC, check_earlier_run, make_way
    from .splits import split_origin
    from .variants import CHANGES_BASE, INITIAL_ADAPTER, initialize

    output_dir = Path(output_dir)
    check_device(profile)
    profile = for_this_card(profile)  # bf16 for a model that overflows fp16; refused on a card without bf16
    if "wandb" in profile.train.report_to and importlib.util.find_spec("wandb") is None:
        raise ValueError("train.report_to에 wandb가 있지만 wandb가 설치되어 있지 않습니다: pip install wandb==0.31.0 "
                         "(또는 report_to: [tensorboard])")
    check_output_folder(output_dir)
    earlier = check_earlier_run(output_dir, resume, if_exists)
    set_seed(profile.train.seed)
    tokenizer = load_tokenizer(profile.model)
    train_set, dev, test, report = prepare_data(profile, tokenizer)
    reset_peak()  # CUDA: this run's peak (peak_memory_bytes), from before its model loads (or with the caller's)
    if model is not None:
        from .lora import model_mismatch

        if mismatch := model_mismatch(model, profile):
            raise ValueError(f"셀에서 만든 모델이 프로필 {profile.name}과 다릅니다: " + "; ".join(mismatch)
                             + ". 셀의 값(BitsAndBytesConfig, LoraConfig)을 프로필에 맞게 고치세요")
    else:
        model = load_profile_model(profile)
        if profile.quantization != "none":
            from peft import prepare_model_for_kbit_training

            # fp32 norms, frozen base. Checkpointing is the Trainer's (TrainingArguments.activation_checkpointing): peft's
            # would call transformers' deprecated gradient_checkpointing_enable, and adds nothing with use_reentrant=False
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model.config.use_cache = False
        model = attach_lora(model, profile.lora)
        initialize(model, profile.lora.variant, profile.model)  # LoftQ's fit (PiSSA/OLoRA: peft, in attach_lora)
    moved_to = make_way(output_dir, earlier, resume, if_exists, "학습", progress)
    check_writable(output_dir)
    if profile.lora.variant in CHANGES_BASE and not resume:  # what the saved adapter is converted against
        save_adapter(model, output_dir / INITIAL_ADAPTER)
    pad = pad_id(tokenizer)
    if report.note:
        progress(report.note)
    packed = f" ({len(train_set)}행으로 패킹)" if profile.train.packing else ""
    progress(f"데이터: {report.summary()}; 학습 레코드 {report.kept}개{packed}, 검증 레코드 {len(dev)}개와 시험 레코드 "
             f"{len(test)}개 ({split_origin(report)})")
    resume_from = last_complete_checkpoint(output_dir / "checkpoints") if resume else None
    if resume and resume_from is None:
        raise ValueError(f"이어서 할 체크포인트가 {output_dir / 'checkpoints'}에 없습니다(완전한 것이 하나도 없음). "
                         "resume 없이 새로 시작하세요")
    before = losses_before_training(profile, model, test, pad, output_dir) if measure_test else None  # zero LoRA
    loss_before = total_loss(before) if before else None
    if measure_test:
        progress((f"{resume_from.name}에서 이어 갑니다. " if resume_from else "") + "학습 전 시험 세트 손실: "
                 f"{loss_before:.4f} (퍼플렉서티 {math.exp(loss_before):.1f})")
    return Run(profile=profile, output_dir=output_dir, model=model, tokenizer=tokenizer, train_set=train_set,
               dev=dev, test=test, data_report=report, pad=pad, loss_before=loss_before, test_before=before,
               resume_from=resume_from, moved_to=moved_to, ctrl_c=CtrlC())


def fit(run: Run, trainer, progress=print) -> float:
    """``trainer.train()`` from the run's checkpoint inside ``guarded``; seconds."""
    with guarded(run, trainer, progress) as clock:
        trainer.train(resume_from_checkpoint=str(run.resume_from) if run.resume_from else None)
    return clock.seconds


def finish_run(run: Run, trainer, seconds: float, progress=print) -> TrainResult:
    """Measure the trained model; when training reached its last step, save the best checkpoint as
    ``<output>/adapter`` with its metadata (rank 0 only); return the results."""
    from .adapter import adapter_metadata, save_adapter
    from .memory import drop_autocast_wrapper, peak_memory_bytes
    from .variants import CHANGES_BASE, INITIAL_ADAPTER

    drop_autocast_wrapper(run.model)  # later calls run as before training, and the model can be freed by `del`
    step = trainer.state.global_step
    best_step = int(Path(best).name.split("-")[1]) if (best := trainer.state.best_model_checkpoint) else None
    finished = step >= trainer.state.max_steps and not run.ctrl_c.pressed
    # the model in memory is the checkpoint with the lowest dev loss (load_best_model_at_end): its test loss is reported.
    # Stopped by stop_after (05's first stage): no adapter, nothing to report; by Ctrl-C: the model it stopped with
    after = record_losses(run.model, run.test, run.pad, run.profile.train.eval_batch_size) \
        if (finished or run.ctrl_c.pressed) and run.test_before is not None else None
    loss_after = total_loss(after) if after else None
    if loss_after is not None:
        which = f"검증 세트 손실이 가장 낮은 체크포인트, 스텝 {best_step}" if best_step not in (None, step) else f"스텝 {step}"
        progress(f"{step} 스텝 학습 후 시험 세트 손실 ({which}): {loss_after:.4f} (퍼플렉서티 {math.exp(loss_after):.1f})")
    training = seconds - trainer.eval_seconds
    result = TrainResult(
        adapter_dir=run.output_dir / "adapter", global_step=step, heldout_loss_before=run.loss_before,
        heldout_loss_after=loss_after, train_seconds=seconds,
        tokens_per_second=trainer.data_collator.tokens / training if training > 0 else 0.0,
        peak_memory_bytes=peak_memory_bytes(), log_history=trainer.state.log_history, data_report=run.data_report,
        resumed_from=str(run.resume_from) if run.resume_from else None, best_step=best_step,
        interrupted=run.ctrl_c.pressed, moved_to=str(run.moved_to) if run.moved_to else None,
        model=run.model, tokenizer=run.tokenizer,
        test_losses={"base": run.test_before, "adapter": after} if after else None)
    if "wandb" in run.profile.train.report_to and trainer.is_world_process_zero():
        import wandb

        wandb.finish()  # writes the run's summary (offline: <output>/wandb/offline-run-*, `wandb sync` uploads it)
    saves = finished and trainer.is_world_process_zero()  # one writer under DDP
    if saves:
        report = run.data_report
        save_adapter(run.model, result.adapter_dir, metadata=adapter_metadata(
            run.profile, run.tokenizer, global_step=step, best_step=best_step, heldout_loss_before=run.loss_before,
            heldout_loss_after=loss_after, train_records=report.kept, train_rows=len(run.train_set), data_source=report.source,
            train_seconds=seconds, tokens_per_second=result.tokens_per_second, world_size=trainer.args.world_size),
            # PiSSA/OLoRA: saved as an ordinary LoRA on the original base (course_utils.variants)
            initial=run.output_dir / INITIAL_ADAPTER if run.profile.lora.variant in CHANGES_BASE else None)
    if run.ctrl_c.pressed:
        progress(f"Ctrl-C로 스텝 {step}에서 멈췄습니다. checkpoint-{step}이 {run.checkpoint_dir}에 저장되어 있습니다. "
                 f"이어서 하려면: python -m course_utils.train --profile {run.profile.name} --output {run.output_dir} "
                 "--resume")
    if trainer.args.world_size > 1:
        progress(f"rank {trainer.args.process_index}/{trainer.args.world_size}: 스텝 {step}에서 끝 — "
                 + (f"어댑터를 {result.adapter_dir}에 저장했습니다" if saves else "어댑터는 rank 0이 저장합니다"))
    return result


def train(profile, output_dir: str | Path, resume: bool = False, if_exists: str = "refuse",
          stop_after: int | None = None, callbacks: list | None = None, progress=print,
          measure_test: bool = True) -> TrainResult:
    """Train the profile's LoRA adapter; return measured results (see ``TrainResult``).

    ``output_dir`` gets ``checkpoints/``, ``tensorboard/``, ``test_loss_before.json`` and, when training reaches its
    last step, ``adapter/`` (the best checkpoint by dev loss). ``resume`` and ``if_exists``: see ``prepare_run``.
    ``stop_after=k`` stops after step k, as an interruption would. ``measure_test``: see ``prepare_run``.
    """
    from .notebook import quiet_libraries

    quiet_libraries()  # before transformers' Trainer imports bitsandbytes
    from .monitoring import training_callbacks
    from .trainer import AnswerOnlyTrainer, TokenCountingCollator, training_arguments

    run = prepare_run(profile, output_dir, resume, if_exists, progress, measure_test=measure_test)
    trainer = AnswerOnlyTrainer(
        model=run.model, args=training_arguments(run.profile, run.checkpoint_dir), train_dataset=run.train_set,
        eval_dataset=run.dev, data_collator=TokenCountingCollator(run.pad), pad_id=run.pad,
        callbacks=training_callbacks(run, stop_after, callbacks))
    return finish_run(run, trainer, fit(run, trainer, progress), progress)


def main(argv=None) -> None:
    from .notebook import quiet_libraries

    quiet_libraries()  # first: the imports below load bitsandbytes
    from .monitoring import TrainingDiverged
    from .overrides import parse_setting, with_model, with_overrides
    from .profiles import PROFILES_FILE, default_profile_name, get_profile

    parser = argparse.ArgumentParser(
        prog="python -m course_utils.train", description="Train the course's LoRA adapter with a profile's recipe. "
        "Every recipe value can be changed here; each change is validated like a profiles YAML, before anything runs.")
    parser.add_argument("--profile", default=default_profile_name(), help="smoke, demo, cpu or gpu8gb")
    parser.add_argument("--model", "--model_name", dest="model", default=None,
                        help="a registry model instead of the profile's (midm-2.0-mini, gpt2, tinyllama-1.1b, phi-2, gemma-3-270m, ...)")
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
    summary = result.summary()
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2, default=str))
    if result.interrupted:
        raise SystemExit(130)  # the conventional status of a program stopped by Ctrl-C


if __name__ == "__main__":
    main()

