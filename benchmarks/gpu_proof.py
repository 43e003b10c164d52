"""GPU proof: the course's own steps on one GPU under an 8 GiB cap, each stage's peak against the estimator.

    python benchmarks/gpu_proof.py                 # on a CUDA GPU, offline; one JSON: results/gpu_proof_<date>.json
    python benchmarks/gpu_proof.py --dry           # CPU, tiny models, no cap: the same code paths, for the test

Unlike ``gpu_check.py`` (a bare training loop), every stage here is the course's code, as a learner's ``gpu8gb`` run
calls it:
- 05: ``train.train`` (the Trainer with the recipe: nf4, fp16 or bf16, checkpointing, paged 8-bit AdamW) for 30 steps;
- 06: ``adapter.load_adapter_model`` and ``inference.generate_batch``;
- 07: ``merge.merge_adapter`` (de-quantized layer by layer, merged and saved in the training dtype) and its size;
- 10: ``preference.train_preference`` with DPO for 2 steps (TRL's trainer, LoRA kept in fp32);
- 09: ``tuning.search`` for 3 trials.
The models: Mi:dm-2.0-Mini-2.3B- (gpu8gb's default), TinyLlama-1.1B- and Phi-2-2.7B-shaped random weights (memory does
not depend on the values; no download),
saved once in fp16 with SmolLM2's tokenizer (its 49,152 tokens: TinyLlama's table grows from 32,000, so its numbers
are a little above the real model's), and the offline Gemma-3-270M (bf16: it overflows fp16) and SmolLM2-135M. An 8 GB
card is emulated with ``torch.cuda.set_per_process_memory_fraction``, which caps PyTorch's allocator only; the CUDA
context is measured beside it (``memory.cuda_outside_pytorch``). Each stage runs inside ``memory.Stage``: peak
statistics reset before it, ``max_memory_reserved`` after. The estimate is the course's estimator for the QLoRA
training step (``vram.estimate_vram`` at the recipe's seq_len and batch, without the context).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import machine_info, write_result  # noqa: E402
from course_utils.units import GIB  # noqa: E402

CARD_BYTES = 8 * GIB
SHAPED = {"midm-2.0-mini": "proof-midm-2.0-mini-shaped", "tinyllama-1.1b": "proof-tinyllama-1.1b-shaped",
          "phi-2": "proof-phi-2-shaped"}  # random weights
OFFLINE = ("gemma-3-270m", "smollm2-135m-instruct")
STAGES = ("05 학습", "06 생성", "07 병합과 저장", "10 DPO", "09 시도 3개")


def register_shaped(key: str, folder: Path, dry: bool) -> str:
    """A registry entry for ``key``'s shape with random weights saved (fp16) in ``folder`` beside SmolLM2's tokenizer;
    returns its registry key. ``dry``: the family's tiny numbers (``models.TINY_CONFIGS``)."""
    from transformers import AutoModelForCausalLM

    from course_utils.loading import load_tokenizer
    from course_utils.models import MODELS, TINY_CONFIGS, build_config

    tokenizer = load_tokenizer("smollm2-135m-instruct")
    spec = MODELS[key]
    config = TINY_CONFIGS[key] if dry else spec.config  # dry: the tiny vocabulary too (Mi:dm's 131k cost 20 s per dry run)
    config = {**config, "vocab_size": max(config["vocab_size"], len(tokenizer))}
    config.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id)
    shaped = dataclasses.replace(spec, key=SHAPED[key], hub_id=str(folder), config=config, seed_model=False)
    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        with torch.device("cuda" if torch.cuda.is_available() and not dry else "cpu"):
            model = AutoModelForCausalLM.from_config(build_config(shaped), dtype=torch.float16)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        del model
    MODELS[shaped.key] = shaped
    return shaped.key


def proof_profile(model: str, dry: bool):
    """gpu8gb's recipe on ``model``, short: 30 optimizer steps (accumulation 16 as the recipe), 8 held-out records,
    2 DPO steps, 3 tuning trials of 2 steps. ``dry``: on the CPU as smoke stands in for gpu8gb (fp32, 8-bit AdamW
    without paging, accumulation 2, 4 steps, 2 general paragraphs per language)."""
    from course_utils.hardware import for_this_card
    from course_utils.profiles import get_profile

    p = get_profile("gpu8gb")
    train = dataclasses.replace(p.train, max_steps=4 if dry else 30, epochs=None, warmup_steps=0, save_steps=2 if dry else 10,
                                eval_steps=2 if dry else 10, logging_steps=1, heldout_records=8, generate_records=4,
                                answer_tokens=8 if dry else 24, report_to=(),
                                # dry: 2 general paragraphs per language for 09's forgetting (the code path; gpu8gb's
                                # count took over a third of the dry run); the real run keeps the recipe's
                                general_texts=2 if dry else p.train.general_texts)
    data = dataclasses.replace(p.data, source="bundled")
    preference = dataclasses.replace(p.preference, steps=2, own_records=2, max_length=128 if dry else p.seq_len)
    tuning = dataclasses.replace(p.tuning, trials=3, steps=2, eval_steps=1, heldout_records=4, generate_records=2)
    p = dataclasses.replace(p, model=model, data=data, train=train, preference=preference, tuning=tuning)
    if dry:
        p = dataclasses.replace(p, device="cpu", dtype="float32", optimizer="adamw_8bit", grad_accum=2, seq_len=256)
    return for_this_card(p)  # bf16 for Gemma-3 on a card with bf16


def run_stages(profile, folder: Path) -> list[dict]:
    """The five stages on ``profile``, one model at a time; a row per stage (an out-of-memory error is a row too)."""
    from course_utils.adapter import load_adapter_model
    from course_utils.inference import generate_batch
    from course_utils.memory import Stage, free
    from course_utils.merge import folder_bytes, merge_adapter
    from course_utils.preference import train_preference
    from course_utils.tuning import search

    rows, adapter = [], folder / "train" / "adapter"

    def stage(name, work):
        row = {"model": profile.model, "stage": name, "dtype": profile.dtype}
        start = time.perf_counter()
        try:
            with Stage(name) as s:
                row.update(work() or {})
            row.update(fits=True, seconds=time.perf_counter() - start, **dataclasses.asdict(s.memory))
            row["verdict"] = s.memory.verdict()
        except torch.OutOfMemoryError as err:
            row.update(fits=False, error=str(err).splitlines()[0])
        free()
        rows.append(row)
        print(f"{profile.model} {name}: " + (row.get("verdict", "") if row["fits"] else "메모리 부족"), flush=True)

    def train_05():
        from course_utils.train import train

        r = train(profile, folder / "train", progress=lambda m: None)
        return {"steps": r.global_step, "heldout_loss_before": r.heldout_loss_before,
                "heldout_loss_after": r.heldout_loss_after, "tokens_per_second": r.tokens_per_second}

    def generate_06():
        model, tokenizer, _ = load_adapter_model(adapter, profile)
        answers = generate_batch(model, tokenizer, [("한국의 수도는 어디인가요?", ""), ("김치는 무엇인가요?", "")],
                                 max_new_tokens=profile.train.answer_tokens)
        return {"answers": len(answers)}

    def merge_07():
        record = merge_adapter(adapter, folder / "merged", progress=lambda m: None)
        return {"merged_bytes": folder_bytes(folder / "merged"), "merged_heldout_loss": record["merged_heldout_loss"]}

    def dpo_10():
        trainer, pairs = train_preference(profile, "dpo", adapter, folder / "dpo", progress=lambda m: None)
        return {"steps": trainer.state.global_step, "pairs": len(pairs),
                "lora_dtypes": sorted({str(p.dtype) for p in trainer.model.parameters() if p.requires_grad})}

    def trials_09():
        study = search(profile, folder / "trials", progress=lambda m: None)
        return {"trials": len(study.trials)}

    for name, work in zip(STAGES, (train_05, generate_06, merge_07, dpo_10, trials_09), strict=True):
        if name != STAGES[0] and not (adapter / "adapter_model.safetensors").exists():
            rows.append({"model": profile.model, "stage": name, "fits": False, "error": "no adapter from 05"})
            continue
        stage(name, work)
    return rows


def estimate(profile, context: int) -> int:
    """The estimator's QLoRA training step for the profile (its seq_len and batch), with the measured context."""
    from course_utils.vram import estimate_vram

    est = estimate_vram(profile.model, "qlora", profile.seq_len, profile.batch_size, profile.lora.r, profile.lora.targets,
                        profile.gradient_checkpointing, profile.optimizer, profile.dtype, profile.lora.dropout,
                        device="cuda", cuda_context=context)
    return est.total


def main(argv=None) -> dict:
    from course_utils.memory import cuda_outside_pytorch
    from course_utils.notebook import quiet_libraries

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="CPU, tiny models, no cap (tests the script)")
    parser.add_argument("--models", nargs="+", default=[*SHAPED, *OFFLINE], choices=[*SHAPED, *OFFLINE])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    quiet_libraries()
    cap = None
    if not args.dry:
        if not torch.cuda.is_available():
            raise SystemExit("No CUDA GPU here. Run with --dry to test the script on a CPU.")
        total = torch.cuda.get_device_properties(0).total_memory
        cap = min(1.0, CARD_BYTES / total)
        torch.cuda.set_per_process_memory_fraction(float(cap))
        print(f"{torch.cuda.get_device_name(0)}: {total / GIB:.1f} GiB; PyTorch's allocator capped at "
              f"{cap * total / GIB:.2f} GiB (an 8 GB card); the CUDA context is outside the cap, measured.")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.models:
            model = register_shaped(key, Path(tmp) / f"{key}-weights", args.dry) if key in SHAPED else key
            if args.dry and key in OFFLINE:
                model = "smollm2-135m-first-8-layers"  # the smoke stand-in: the same code, small
            profile = proof_profile(model, args.dry)
            context = cuda_outside_pytorch()
            for row in run_stages(profile, Path(tmp) / key):
                rows.append({**row, "shape_of": key, "estimate_bytes": estimate(profile, context),
                             "cuda_context": context})
    result = {**machine_info(), "dry": args.dry, "memory_cap_fraction": cap, "card_bytes": CARD_BYTES, "rows": rows}
    write_result("gpu_proof_dry" if args.dry else "gpu_proof", result, args.out)
    return result


if __name__ == "__main__":
    main()
