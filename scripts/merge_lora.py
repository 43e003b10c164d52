"""Merge a LoRA adapter into its base model and save a plain transformers model (for llama.cpp, Ollama, vLLM).

    python merge_lora.py --lora_weights outputs/train/adapter --output_dir outputs/merged

merge_and_unload adds (alpha / r) * B @ A to each adapted weight and removes the adapter layers. A QLoRA adapter
learned on the 4-bit (nf4) weights, so by default it is merged into those weights de-quantized: the model that
was evaluated during training. --quantization none merges into the full-precision weights instead (a LoRA trained
without 4-bit, or a deliberate choice: a slightly different model). The course's notebook 07 writes this file.
"""
import argparse
import json
import warnings
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*deprecated", FutureWarning)  # peft 0.21, inside

# The prompt train.py trained on, as the tokenizer's chat template: chat servers then send the prompt the model knows
CHAT_TEMPLATE = ("{%- set users = messages | selectattr('role', 'equalto', 'user') | list -%}"
                 "{%- if users | length != 1 -%}{{ raise_exception('send exactly one user message') }}{%- endif -%}"
                 "{BOS}### 질문: {{ users[0]['content'] | trim }}\n\n### 답변:"
                 "{%- for m in messages if m['role'] == 'assistant' %} {{ m['content'] | trim }}{{ eos_token }}"
                 "{%- endfor -%}")


def merged_model(base_model, lora_weights, quantization="nf4", dtype="bfloat16"):
    """The base (de-quantized nf4 weights, or the full-precision ones) with the adapter merged in."""
    cuda = torch.cuda.is_available()
    dtype = gpu_dtype(dtype) if cuda else torch.float32  # a CPU has no fast, exact float16
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=dtype) if quantization == "nf4" else None
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype, quantization_config=quantization,
                                                 device_map={"": "cuda:0" if cuda else "cpu"})
    if quantization is not None:
        for module in model.modules():  # bitsandbytes 0.50 on an AVX512-BF16 CPU: keep the standard 4-bit layout
            if hasattr(module, "support_avx512bf16_for_cpu"):
                module.support_avx512bf16_for_cpu = False
        # plain layers holding the nf4-rounded weights the adapter was trained on. transformers keeps the 4-bit layers
        # until it has finished: a model over ~2B parameters may not fit an 8 GB card here; merge it on the CPU then
        # (CUDA_VISIBLE_DEVICES= python merge_lora.py ..., slower, in float32)
        model = model.dequantize()
    model = PeftModel.from_pretrained(model, lora_weights)
    return model.merge_and_unload()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Merge a LoRA adapter into its base and save a plain transformers model.")
    parser.add_argument("--lora_weights", default="outputs/train/adapter", help="the adapter folder train.py saved")
    parser.add_argument("--base_model", default=None, help="default: the one in the adapter's adapter_config.json")
    parser.add_argument("--output_dir", default="outputs/merged", help="a new folder for the merged model")
    parser.add_argument("--quantization", choices=["nf4", "none"], default="nf4",
                        help="nf4: into the de-quantized nf4 weights it trained on; none: into the original weights")
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="bfloat16",
                        help="the saved weights' dtype (train.py's --dtype)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    output_dir = Path(args.output_dir)
    if output_dir.exists():
        raise SystemExit(f"오류: {output_dir}가 이미 있습니다. 아무것도 바꾸지 않았습니다. 다른 --output_dir을 고르세요")
    config = Path(args.lora_weights) / "adapter_config.json"
    if not config.exists():
        raise SystemExit(f"오류: {config}가 없습니다. --lora_weights에 train.py가 저장한 adapter 폴더를 주세요")
    base_model = args.base_model or json.loads(config.read_text(encoding="utf-8"))["base_model_name_or_path"]

    model = merged_model(base_model, args.lora_weights, args.quantization, args.dtype)
    has_tokenizer = (Path(args.lora_weights) / "tokenizer_config.json").is_file()  # train.py saves one there
    tokenizer = AutoTokenizer.from_pretrained(args.lora_weights if has_tokenizer else base_model)
    bos = "{{ bos_token }}" if tokenizer("x").input_ids[:1] == [tokenizer.bos_token_id] else ""
    tokenizer.chat_template = CHAT_TEMPLATE.replace("{BOS}", bos)
    generation = model.generation_config  # what a plain generate() call does: notebook 06's decoding
    generation.do_sample, generation.repetition_penalty, generation.max_new_tokens = False, 1.1, 128
    generation.temperature = generation.top_p = generation.top_k = None  # the base's sampling values: invalid when greedy
    generation.eos_token_id, generation.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    partial = output_dir.with_name(output_dir.name + ".partial")
    model.to(model.dtype if torch.cuda.is_available() else getattr(torch, args.dtype)).save_pretrained(partial)  # training dtype
    tokenizer.save_pretrained(partial)
    partial.rename(output_dir)  # whole or not at all
    size = sum(f.stat().st_size for f in output_dir.iterdir()) / 1024**3
    print(f"병합한 모델을 저장했습니다: {output_dir} ({size:.2f} GiB, 가중치 {model.dtype}, {base_model} + {args.lora_weights})")


def gpu_dtype(name):
    """``name``'s torch dtype, but float16 for bfloat16 on a card without native bfloat16 (compute capability below
    8.0: a T4), as train.py chose; says so."""
    if name != "bfloat16" or torch.cuda.is_bf16_supported(including_emulation=False):
        return getattr(torch, name)
    print("이 GPU는 bf16을 직접 계산하지 못해 fp16으로 계산합니다 (train.py도 그렇게 학습했습니다)")
    return torch.float16


if __name__ == "__main__":
    main()
