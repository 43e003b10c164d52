"""Preference tuning on the SFT adapter (notebook 10): DPO and ORPO with TRL, and the measures that compare them.

    python -m course_utils.preference --method dpo --adapter outputs/05_training/cpu/adapter --output outputs/dpo
    python -m course_utils.preference --method orpo --adapter … --output … [--profile cpu] [--resume | --overwrite]

DPO needs a reference model. Given a PEFT model that already holds the trained SFT adapter and ``ref_model=None``, TRL
1.16 adds a frozen copy of that adapter named "ref" beside it (trl/trainer/dpo_trainer.py, ``model.add_adapter("ref",
...)``) and computes the reference's log-probabilities with it switched in (``use_adapter(model, "ref")``): the
reference is the SFT model, and only the LoRA values are copied, never the base (tests/test_preference.py pins this).
ORPO needs no reference at all. The run folder follows training's
rules (``runs``): an earlier run is refused unless ``--resume`` or ``--overwrite`` (moved aside, never deleted); Ctrl-C
saves a checkpoint and says how to resume; a NaN loss stops the run; TensorBoard logs go to ``<output>/tensorboard``;
the finished adapter goes to ``<output>/adapter`` with ``course_adapter.json`` (06-08 read it like 05's).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

METHODS = ("dpo", "orpo")


def preference_config(profile, method: str, output_dir):
    """TRL's ``DPOConfig`` or ``ORPOConfig`` for the profile's recipe (notebook 10 writes the DPO call in full)."""
    if method not in METHODS:
        raise ValueError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    if method == "dpo":
        from trl import DPOConfig as Config
    else:
        from trl.experimental.orpo import ORPOConfig as Config
    from .trainer import recipe_arguments

    p = profile.preference
    return Config(
        output_dir=str(Path(output_dir) / "checkpoints"), **(recipe_arguments(profile) | preference_batches(profile)),
        beta=p.beta,
        learning_rate=p.learning_rate, max_length=p.max_length, max_steps=p.steps,
        warmup_steps=min(profile.train.warmup_steps, p.steps // 10), logging_steps=1, save_steps=max(1, p.steps // 2),
        save_total_limit=2)


def preference_batches(profile) -> dict:
    """One pair per forward pass, the profile's pairs per optimizer step by accumulation: a pair is two sequences
    (chosen and rejected), and TRL's ORPO computes the logits of every position over the whole vocabulary (Gemma:
    262,144 per token); at the cpu profile's batch of 4, DPO and ORPO needed more than three fp32 copies of the model in
    memory on top of it (benchmark 7). gpu8gb's batch is 1 already."""
    return {"per_device_train_batch_size": 1, "gradient_accumulation_steps": profile.batch_size * profile.grad_accum}


def load_policy(profile, adapter_dir, trainable: bool = True):
    """(SFT adapter on the profile's base, tokenizer, the adapter's metadata): the policy preference tuning starts from."""
    from peft import PeftModel

    from .adapter import check_adapter
    from .loading import load_profile_model, load_tokenizer

    meta = check_adapter(adapter_dir, profile.model)
    base = load_profile_model(profile)
    if trainable and profile.quantization != "none":
        from peft import prepare_model_for_kbit_training

        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    model = PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=trainable)
    model.config.use_cache = False
    return model, load_tokenizer(profile.model), meta


def preference_vram(model: str, seq_len: int = 512, batch_size: int = 1, r: int = 8, targets: str = "attention",
                    optimizer: str = "paged_adamw_8bit", compute_dtype: str = "float16") -> dict[str, int]:
    """Estimated training bytes (``vram.estimate_vram``, QLoRA) of a supervised step, a DPO/ORPO step (chosen and
    rejected in one batch of 2 x ``batch_size``) with the reference as the adapter switched off (no copy), and the
    same with a second copy of the 4-bit base as the reference (what a separate ``ref_model`` loads)."""
    from .models import count_params, meta_model
    from .vram import DTYPE_BYTES, estimate_vram

    kw = dict(r=r, targets=targets, optimizer=optimizer, compute_dtype=compute_dtype)
    sft = estimate_vram(model, "qlora", seq_len, batch_size, **kw)
    pairs = estimate_vram(model, "qlora", seq_len, 2 * batch_size, **kw)
    counts = count_params(meta_model(model))  # a reference copy is loaded, not prepared for training: the rest in the
    rest = DTYPE_BYTES[compute_dtype] * (counts.total - counts.linear)  # compute dtype, not fp32
    copy = pairs.terms["weights_linear"] + pairs.terms["quant_constants"] + rest
    return {"sft": sft.total, "pairs_ref_adapter": pairs.total, "pairs_reference_copy": pairs.total + copy,
            "reference_copy": copy}


def reference_copy_bytes(model) -> int:
    """Bytes a separately loaded reference model would hold: the base weights of the peft ``model`` (its parameters
    and buffers but the LoRA ones, 4-bit data and constants included), measured on the model in memory instead of
    loading a second copy."""
    from .quantization import quant_state_bytes

    seen, total = set(), 0
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        key = t.untyped_storage().data_ptr()
        if "lora_" in name or key in seen:
            continue
        seen.add(key)
        qs = getattr(t, "quant_state", None)
        total += t.untyped_storage().nbytes() + (quant_state_bytes(qs) if qs is not None else 0)
    return total


def training_pairs(profile, model, tokenizer, progress=print) -> list[dict]:
    """The bundled training pairs plus the SFT adapter's own mistakes on ``preference.own_records`` training records."""
    from .preference_data import kind_counts, load_pairs, own_pairs, split_pairs
    from .splits import split_source, spread

    d = profile.data
    records, _, _, _ = split_source(d.source, profile.train.heldout_records, profile.train.seed, d.on_invalid,
                                    d.max_records)
    own = own_pairs(model, tokenizer, spread(records, profile.preference.own_records), d.template,
                    profile.train.answer_tokens, profile.train.eval_batch_size)
    bundled = split_pairs(load_pairs())[0]  # the training pairs: dev and test pairs are never trained on
    progress(f"선호 쌍: 동봉된 학습 쌍 {len(bundled)}개 + 어댑터의 실수로 만든 쌍 {len(own)}개 "
             f"(학습 레코드 {profile.preference.own_records}개 중; 종류별 {kind_counts(own) or '없음'})")
    return bundled + own


def trainable_in_fp32(model) -> int:
    """Cast ``model``'s trainable parameters to fp32 again; returns how many were not fp32.

    TRL 1.16's ``DPOTrainer`` casts every trainable parameter of a 4-bit model to bf16 when it is built
    (trl/trainer/dpo_trainer.py, lines 720-729: ``param.data = param.data.to(torch.bfloat16)``), whatever the
    training precision, and no ``DPOConfig`` setting turns that off. A bf16 weight keeps 8 significant bits: an update
    smaller than 1/256 of the weight rounds away, and at gpu8gb's learning rate of 5e-5 most do; with fp16 mixed
    precision the GradScaler then runs over bf16 LoRA weights as well. The optimizer is built later, in ``train()``,
    from the same parameter objects, so casting them back before ``train()`` gives AMP its fp32 master weights.
    """
    import torch

    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
            cast += 1
    return cast


def preference_trainer(profile, method: str, model, tokenizer, pairs: list[dict], output_dir, callbacks=()):
    """TRL's ``DPOTrainer`` (``ref_model=None``: the reference is a frozen copy of the SFT adapter, the "ref" adapter;
    the trainable LoRA weights kept in fp32, ``trainable_in_fp32``) or ``ORPOTrainer``."""
    from .preference_data import trl_dataset

    dataset = trl_dataset(pairs, tokenizer, profile.data.template)
    args = preference_config(profile, method, output_dir)
    if method == "dpo":
        from trl import DPOTrainer

        trainer = DPOTrainer(model=model, ref_model=None, args=args, train_dataset=dataset,
                             processing_class=tokenizer, callbacks=list(callbacks))
        trainable_in_fp32(trainer.model)
        return trainer
    from trl.experimental.orpo import ORPOTrainer

    return ORPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                       callbacks=list(callbacks))


def train_preference(profile, method: str, adapter_dir, output_dir, resume: bool = False, if_exists: str = "refuse",
                     progress=print):
    """Preference-tune the SFT adapter in ``adapter_dir``; return (trainer, pairs). Folder rules: see the module."""
    from types import SimpleNamespace

    from .adapter import save_adapter
    from .hardware import check_device, for_this_card
    from .monitoring import training_callbacks, use_text_progress
    from .notebook import quiet_libraries
    from .runs import (
        CtrlC,
        check_earlier_run,
        check_output_folder,
        check_writable,
        last_complete_checkpoint,
        make_way,
    )

    quiet_libraries()
    output_dir = Path(output_dir)
    check_device(profile)
    profile = for_this_card(profile)  # bf16 for a model that overflows fp16; refused on a card without bf16
    if method not in METHODS:
        raise ValueError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    check_output_folder(output_dir)
    earlier = check_earlier_run(output_dir, resume, if_exists)
    from transformers import set_seed

    set_seed(profile.train.seed)
    model, tokenizer, meta = load_policy(profile, adapter_dir)
    pairs = training_pairs(profile, model, tokenizer, progress)
    make_way(output_dir, earlier, resume, if_exists, "실행", progress)
    check_writable(output_dir)
    run = SimpleNamespace(profile=profile, output_dir=output_dir, ctrl_c=CtrlC())
    trainer = preference_trainer(profile, method, model, tokenizer, pairs, output_dir,
                                 training_callbacks(run, None, None))
    use_text_progress(trainer, progress)
    checkpoint = last_complete_checkpoint(output_dir / "checkpoints") if resume else None
    with run.ctrl_c:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    step = trainer.state.global_step
    if run.ctrl_c.pressed:
        progress(f"Ctrl-C로 스텝 {step}에서 멈췄습니다. 이어서 하려면: python -m course_utils.preference --method {method} "
                 f"--adapter {adapter_dir} --output {output_dir} --profile {profile.name} --resume")
    elif step >= trainer.state.max_steps:
        p = profile.preference
        save_adapter(trainer.model, output_dir / "adapter", metadata={
            **meta, "global_step": step, "profile": profile.name, "preference": {
                "method": method, "sft_adapter": str(adapter_dir), "beta": p.beta, "learning_rate": p.learning_rate,
                "steps": p.steps, "pairs": len(pairs)}})
        progress(f"{method.upper()} {step} 스텝 끝: 어댑터를 {output_dir / 'adapter'}에 저장했습니다")
    return trainer, pairs


def main(argv=None) -> None:
    from .profiles import ProfileError, default_profile_name, get_profile
    from .runs import RunExistsError

    parser = argparse.ArgumentParser(prog="python -m course_utils.preference", description=__doc__.split("\n")[0])
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--adapter", required=True, type=Path, help="the SFT adapter folder (05: .../adapter)")
    parser.add_argument("--output", required=True, type=Path, help="the run folder")
    parser.add_argument("--profile", default=None, help="smoke, demo, cpu or gpu8gb (default: COURSE_PROFILE, else by GPU)")
    parser.add_argument("--profiles", type=Path, default=None, help="another profiles YAML (e.g. 09's best_profile.yaml)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    group.add_argument("--overwrite", action="store_true", help="move an earlier run in --output aside, then start")
    args = parser.parse_args(argv)
    try:
        name = args.profile or default_profile_name()
        profile = get_profile(name, args.profiles) if args.profiles else get_profile(name)
        train_preference(profile, args.method, args.adapter, args.output, resume=args.resume,
                         if_exists="overwrite" if args.overwrite else "refuse")
    except (ProfileError, RunExistsError, FileNotFoundError, ValueError) as err:
        sys.exit(f"오류: {err}")


if __name__ == "__main__":
    main()
