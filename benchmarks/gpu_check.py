"""GPU check: does the `gpu8gb` recipe fit an 8 GB card, and how fast is it? Measured, not assumed.

    python benchmarks/gpu_check.py            # on a CUDA GPU, offline, ~5 min on an H100
    python benchmarks/gpu_check.py --dry      # CPU, tiny configs, no memory cap: tests the script itself

GPT-2 124M, TinyLlama-1.1B, Phi-2 2.7B and gpu8gb's Mi:dm 2.0 Mini 2.3B are built from their architecture configs with random
weights (memory and speed do not depend on the weight values; no network needed), saved once in
fp16 and reloaded with the `gpu8gb` recipe: nf4 QLoRA with its bf16 compute (fp16 on a card without bf16), seq 512, batch 1 x
grad-accum 16, gradient checkpointing, paged 8-bit AdamW, LoRA r=8 on the attention projections.
An 8 GB card is emulated with `torch.cuda.set_per_process_memory_fraction`: that caps PyTorch's
allocator only; the CUDA context (and the optimizer's paged memory, which is CUDA unified memory)
live outside the cap. After 2 warm-up optimizer steps, `--steps` optimizer steps are timed and
the peak `max_memory_allocated` / `max_memory_reserved` over them is compared with the course's
estimator (`course_utils.vram.estimate_vram`, without its CUDA-context term). Plain LoRA with the
16-bit base is run the same way where it fits, and notebook 10's DPO step on the QLoRA recipe (chosen + rejected, the
reference = a frozen copy of the SFT adapter, TRL's "ref" adapter). Results: benchmarks/results/gpu_<date>.json.

Needs only torch, transformers, peft, accelerate and bitsandbytes (+ this repository).
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import machine_info, write_result  # noqa: E402
from course_utils.units import GIB  # noqa: E402

CHECKED = ("gpt2", "tinyllama-1.1b", "phi-2", "midm-2.0-mini")  # the seed's three and gpu8gb's default
CARD_BYTES = 8 * GIB
METHODS = ("qlora", "lora", "dpo")  # dpo: notebook 10's preference step on the QLoRA recipe
# The seed's RTX 3070 (8 GB) figures for QLoRA, seq 512, batch 1 x 16 (samples/s, memory)
SEED_3070 = {"gpt2": ("10–12", "~2 GB"), "tinyllama-1.1b": ("4–5", "~4–5 GB"), "phi-2": ("2.5–3", "~6–7 GB")}
def spec_for(key: str, dry: bool):
    from course_utils.models import MODELS, tiny_spec

    return tiny_spec(key) if dry else MODELS[key]


def save_random_fp16(spec, folder: Path, device: str) -> None:
    """Random weights from the architecture config, saved once in fp16."""
    from transformers import AutoModelForCausalLM

    from course_utils.models import build_config

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(build_config(spec), dtype=torch.float16)
    model.save_pretrained(folder)
    del model


def load_recipe(folder: Path, method: str, profile, device: str):
    """The saved model with the recipe's LoRA: nf4 (qlora) or the 16-bit base (lora), checkpointing on."""
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    from course_utils.lora import attach_lora
    from course_utils.quantization import bnb_config

    dtype = profile.torch_dtype if device == "cuda" else torch.float32  # the recipe's bf16 (fp16 on a card without it)
    quant = bnb_config(profile) if method == "qlora" else None
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, quantization_config=quant,
                                                 device_map={"": device})
    model.config.use_cache = False
    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=profile.gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif profile.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return attach_lora(model, profile.lora)


def add_reference_adapter(model) -> None:
    """What TRL 1.16's ``DPOTrainer`` adds to a PEFT model that holds a trained adapter (``ref_model=None``): a frozen
    copy of that adapter named "ref" (trl/trainer/dpo_trainer.py; tests/test_preference.py pins it). LoRA values only,
    the base is shared."""
    model.add_adapter("ref", model.peft_config["default"])
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".default." in name:
                model.get_parameter(name.replace(".default.", ".ref.")).copy_(param)
    model.set_adapter("default")  # the trained one stays active and trainable; "ref" stays frozen


def dpo_loss(model, ids, beta: float = 0.1):
    """A DPO step's loss on ``ids`` (first half chosen, second half rejected) as TRL computes it for a PEFT model: the
    reference is the frozen "ref" copy of the adapter (``add_reference_adapter``, switched in as TRL's ``use_adapter``
    does), its log-probabilities without grad; no second copy of the base."""
    def logps(logits):
        logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        return logp.sum(-1)

    model.set_adapter("ref")
    try:
        with torch.no_grad():
            ref = logps(model(input_ids=ids).logits)
    finally:
        model.set_adapter("default")
    pol = logps(model(input_ids=ids).logits)
    half = ids.shape[0] // 2
    margin = (pol[:half] - ref[:half]) - (pol[half:] - ref[half:])
    return -torch.nn.functional.logsigmoid(beta * margin).mean()


def train_and_measure(model, profile, steps: int, warmup: int, seq_len: int, optimizer: str, device: str,
                      dpo: bool = False) -> dict:
    """Warm up, then time ``steps`` optimizer steps (batch x grad-accum micro-batches each); ``dpo``: notebook 10's
    step, chosen and rejected (2 x batch sequences) against the frozen "ref" copy of the adapter."""
    from course_utils.vram_measure import make_optimizer

    cuda = device == "cuda"
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(trainable, optimizer, lr=profile.train.learning_rate)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and profile.torch_dtype == torch.float16)  # fp16 only
    gen = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    model.train()
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
        for _ in range(profile.grad_accum):
            rows = (2 if dpo else 1) * profile.batch_size
            ids = torch.randint(10, min(vocab, 30000), (rows, seq_len), generator=gen).to(device)
            with torch.autocast(device, dtype=profile.torch_dtype, enabled=cuda):
                loss = (dpo_loss(model, ids) if dpo else model(input_ids=ids, labels=ids).loss) / profile.grad_accum
            scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    samples = steps * profile.grad_accum * profile.batch_size
    row = {"seconds": seconds, "samples_per_s": samples / seconds, "tokens_per_s": samples * seq_len / seconds,
           "final_loss": float(loss) * profile.grad_accum}
    if cuda:
        row.update(peak_allocated=torch.cuda.max_memory_allocated(), peak_reserved=torch.cuda.max_memory_reserved())
    return row


def check_one(key: str, method: str, folder: Path, profile, args, device: str) -> dict:
    from course_utils.units import pct_error
    from course_utils.vram import estimate_vram

    spec = spec_for(key, args.dry)
    optimizer = profile.optimizer if device == "cuda" else "adamw_torch"
    dpo = method == "dpo"  # notebook 10: a QLoRA DPO step, the reference = a frozen copy of the adapter
    est = estimate_vram(spec, "qlora" if dpo else method, args.seq_len, (2 if dpo else 1) * profile.batch_size,
                        profile.lora.r, profile.lora.targets, profile.gradient_checkpointing, profile.optimizer,
                        profile.dtype, profile.lora.dropout, device="cuda")
    estimate = est.total - est.terms["cuda_context"]  # = preference_vram's pairs_ref_adapter, context aside
    row = {"model": key, "method": method, "optimizer": optimizer, "estimate_bytes": estimate}
    model = None
    try:
        model = load_recipe(folder, "qlora" if dpo else method, profile, device)
        if dpo:
            add_reference_adapter(model)
        row.update(train_and_measure(model, profile, args.steps, args.warmup, args.seq_len, optimizer, device, dpo))
        row["fits"] = True
        if "peak_allocated" in row:
            row["estimate_error_pct"] = pct_error(estimate, row["peak_allocated"])
    except torch.OutOfMemoryError as err:
        row.update(fits=False, error=str(err).splitlines()[0])
    finally:
        del model
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    return row


def gib(n) -> str:
    """GiB, or MiB below a quarter GiB (the dry run's tiny models); a dash when not measured."""
    from course_utils.units import gib as in_gib
    from course_utils.units import mib

    if n is None:
        return "—"
    return in_gib(n) if n >= 2**28 else mib(n)


def print_table(rows: list[dict], cap: bool) -> None:
    print("\n| model | method | peak allocated | peak reserved | estimate | error | samples/s | tokens/s | seed RTX 3070 (QLoRA) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        seed = SEED_3070.get(r["model"], ("no seed figure:", "not in the seed's table"))
        if not r["fits"]:
            print(f"| {r['model']} | {r['method']} | does not fit{' the 8 GiB cap' if cap else ''} | | "
                  f"{gib(r['estimate_bytes'])} | | | | |")
            continue
        err = f"{r['estimate_error_pct']:+.1f} %" if "estimate_error_pct" in r else "—"
        print(f"| {r['model']} | {r['method']} | {gib(r.get('peak_allocated'))} | {gib(r.get('peak_reserved'))} | "
              f"{gib(r['estimate_bytes'])} | {err} | {r['samples_per_s']:.2f} | {r['tokens_per_s']:.0f} | "
              f"{seed[0]} samples/s, {seed[1]} |")


def main(argv=None) -> dict:
    from course_utils.notebook import quiet_libraries
    from course_utils.profiles import get_profile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="CPU, tiny configs, no cap (tests the script)")
    parser.add_argument("--models", nargs="+", default=list(CHECKED), choices=CHECKED)
    parser.add_argument("--steps", type=int, default=None, help="timed optimizer steps (default 20; dry 2)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up optimizer steps (default 2; dry 1)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    quiet_libraries()
    profile = get_profile("gpu8gb")
    device = "cpu" if args.dry else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("No CUDA GPU here. Run with --dry to test the script on a CPU.")
    if device == "cuda":
        from course_utils.hardware import for_this_card

        profile = for_this_card(profile)  # fp16 on a card without native bf16
    args.steps = args.steps or (2 if args.dry else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.dry else 2)
    args.seq_len = 32 if args.dry else profile.seq_len
    if args.dry:
        profile = dataclasses.replace(profile, grad_accum=2)
    cap = None
    if device == "cuda":
        total = torch.cuda.get_device_properties(0).total_memory
        cap = min(1.0, CARD_BYTES / total)
        torch.cuda.set_per_process_memory_fraction(cap)
        print(f"{torch.cuda.get_device_name(0)}: {total / GIB:.1f} GiB; PyTorch's allocator capped at "
              f"{cap * total / GIB:.2f} GiB to emulate an 8 GB card. The CUDA context and the paged "
              f"optimizer's unified memory are outside this cap.")
        print("An H100 is not an RTX 3070: memory use is comparable, speed is not (the H100 is several times faster).")
    else:
        print("dry run: CPU, tiny configs, fp32, AdamW (torch), no memory cap — checks the script, not the claims.")
    rows = []
    for key in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / key
            save_random_fp16(spec_for(key, args.dry), folder, device)
            for method in METHODS:
                row = check_one(key, method, folder, profile, args, device)
                rows.append(row)
                print(f"{key} {method}: " + (f"{row['samples_per_s']:.2f} samples/s" if row["fits"] else "does not fit"),
                      flush=True)
    print_table(rows, cap is not None)
    result = {**machine_info(), "dry": args.dry, "memory_cap_fraction": cap, "seq_len": args.seq_len,
              "batch_size": profile.batch_size, "grad_accum": profile.grad_accum, "steps": args.steps,
              "warmup_steps": args.warmup, "rows": rows}
    write_result("gpu_dry" if args.dry else "gpu", result, args.out)
    return result


if __name__ == "__main__":
    main()
