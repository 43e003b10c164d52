"""Answer a question with a trained LoRA adapter on its base model.

    python inference.py --lora_weights outputs/train/adapter --prompt "한국의 수도는 어디인가요?"
    python inference.py --base_model K-intelligence/Midm-2.0-Mini-Instruct --lora_weights outputs/train/adapter \
        --prompt "..." --do_sample --temperature 0.7 --top_p 0.9

The base is loaded as train.py trained on it (4-bit nf4 unless --quantization none), the question is written in
the prompt the adapter learned, and the answer is greedy with a repetition penalty of 1.1 (notebook 06 compares
the choices). The course's notebook 06 writes this file.
"""
import argparse
import json
import warnings
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*deprecated", FutureWarning)  # peft 0.21, inside


def prompt_of(instruction, input_text=""):
    """The KoAlpaca prompt train.py trained on, up to where the answer starts."""
    if input_text:
        return f"### 질문: {instruction}\n\n### 입력: {input_text}\n\n### 답변:"
    return f"### 질문: {instruction}\n\n### 답변:"


def load(base_model, lora_weights, quantization="nf4", dtype="bfloat16"):
    """(base model with the adapter, tokenizer), the base loaded the way it was trained."""
    cuda = torch.cuda.is_available()
    dtype = gpu_dtype(dtype) if cuda else torch.float32
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=dtype) if quantization == "nf4" else None
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype, quantization_config=quantization,
                                                 device_map={"": "cuda:0" if cuda else "cpu"})
    for module in model.modules():  # bitsandbytes 0.50 on an AVX512-BF16 CPU: keep the standard 4-bit path
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    model = PeftModel.from_pretrained(model, lora_weights)  # the adapter's A and B beside the frozen base
    model.eval()
    has_tokenizer = (Path(lora_weights) / "tokenizer_config.json").is_file()  # train.py saves one beside the adapter
    return model, AutoTokenizer.from_pretrained(lora_weights if has_tokenizer else base_model)


@torch.no_grad()
def answer(model, tokenizer, instruction, input_text="", max_new_tokens=128, **decoding):
    """The model's answer to one instruction (greedy with repetition penalty 1.1 unless ``decoding`` changes it)."""
    ids = tokenizer(prompt_of(instruction, input_text), return_tensors="pt").input_ids.to(model.device)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
                         **{"do_sample": False, "repetition_penalty": 1.1, **decoding})
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Answer one question with a LoRA adapter on its base model.")
    parser.add_argument("--lora_weights", default="outputs/train/adapter", help="the adapter folder train.py saved")
    parser.add_argument("--base_model", default=None, help="default: the one in the adapter's adapter_config.json")
    parser.add_argument("--prompt", required=True, help="the question")
    parser.add_argument("--input", default="", help="input text that goes with the question (optional)")
    parser.add_argument("--max_new_tokens", type=int, default=128)
    parser.add_argument("--quantization", choices=["nf4", "none"], default="nf4", help="as given to train.py")
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="bfloat16",
                        help="as given to train.py (a CPU computes in float32)")
    parser.add_argument("--do_sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=0.7, help="with --do_sample")
    parser.add_argument("--top_p", type=float, default=0.9, help="with --do_sample")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    config = Path(args.lora_weights) / "adapter_config.json"
    if not config.exists():
        raise SystemExit(f"오류: {config}가 없습니다. --lora_weights에 train.py가 저장한 adapter 폴더를 주세요")
    base_model = args.base_model or json.loads(config.read_text(encoding="utf-8"))["base_model_name_or_path"]
    model, tokenizer = load(base_model, args.lora_weights, args.quantization, args.dtype)
    decoding = {"do_sample": True, "temperature": args.temperature, "top_p": args.top_p} if args.do_sample else {}
    torch.manual_seed(args.seed)
    print(answer(model, tokenizer, args.prompt, args.input, args.max_new_tokens, **decoding))


def gpu_dtype(name):
    """``name``'s torch dtype, but float16 for bfloat16 on a card without native bfloat16 (compute capability below
    8.0: a T4), as train.py chose; says so."""
    if name != "bfloat16" or torch.cuda.is_bf16_supported(including_emulation=False):
        return getattr(torch, name)
    print("이 GPU는 bf16을 직접 계산하지 못해 fp16으로 계산합니다 (train.py도 그렇게 학습했습니다)")
    return torch.float16


if __name__ == "__main__":
    main()
