"""Train a LoRA adapter on KoAlpaca-style instructions: QLoRA (a 4-bit base) on an 8 GB card.

    python train.py --model_name K-intelligence/Midm-2.0-Mini-Instruct --dataset_path data/koalpaca/train.jsonl \
        --eval_path data/koalpaca/dev.jsonl --output_dir outputs/midm --num_epochs 3 --batch_size 1 \
        --gradient_accumulation_steps 16
    python train.py ... --resume      # an interrupted run goes on from its last checkpoint

The course's notebooks 04 and 05 write this file cell by cell. Every default below is the course's gpu8gb recipe.
An earlier run in --output_dir is never overwritten: choose another folder, or --resume it.
"""
import argparse
import json
import sys
import warnings
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    DataCollatorForSeq2Seq,
    Trainer,
    TrainingArguments,
    set_seed,
)

warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*deprecated", FutureWarning)  # peft 0.21, inside


def prompt_of(record):
    """The KoAlpaca prompt: the question (and input, when there is one), then where the answer starts."""
    if record.get("input"):
        return f"### 질문: {record['instruction']}\n\n### 입력: {record['input']}\n\n### 답변:"
    return f"### 질문: {record['instruction']}\n\n### 답변:"


def tokenize(record, tokenizer, max_length):
    """Token ids and labels of one record. The prompt's labels are -100 (no loss): only the answer and its EOS are
    learned. Prompt and answer are tokenized apart, so the boundary is exact. Returns (example, length before
    truncation)."""
    prompt = tokenizer(prompt_of(record)).input_ids  # with BOS, where the tokenizer adds one
    answer = tokenizer(" " + record["output"], add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    input_ids, labels = prompt + answer, [-100] * len(prompt) + answer
    example = {"input_ids": input_ids[:max_length], "attention_mask": [1] * min(len(input_ids), max_length),
               "labels": labels[:max_length]}
    return example, len(input_ids)


def read_jsonl(path):
    """Records of a JSONL file (written by prepare_dataset.py); the error names the line and the missing field."""
    if not Path(path).is_file():
        sys.exit(f"오류: {path}가 없습니다. 먼저 python prepare_dataset.py로 train.jsonl, dev.jsonl, test.jsonl을 만드세요")
    records = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                sys.exit(f"오류: {path}, {n}번째 줄: 올바른 JSON이 아닙니다 ({err.msg}). 그 줄을 고치거나 지우세요")
            if not isinstance(record, dict):
                sys.exit(f"오류: {path}, {n}번째 줄: 레코드(JSON 객체)가 아닙니다. prepare_dataset.py로 파일을 준비하세요")
            for field in ("instruction", "output"):
                if not isinstance(record.get(field), str) or not record[field].strip():
                    sys.exit(f"오류: {path}, {n}번째 줄: '{field}' 필드가 없거나 비어 있습니다. "
                             f"python prepare_dataset.py로 파일을 준비하세요")
            records.append(record)
    return records


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a LoRA adapter (QLoRA) on KoAlpaca-style instructions.")
    parser.add_argument("--model_name", default="K-intelligence/Midm-2.0-Mini-Instruct", help="hub id or local folder")
    parser.add_argument("--dataset_path", default="data/koalpaca/train.jsonl", help="training records (JSONL)")
    parser.add_argument("--eval_path", default="data/koalpaca/dev.jsonl",
                        help="dev records (JSONL): the checkpoint kept is the one with the lowest loss on them")
    parser.add_argument("--output_dir", default="outputs/train", help="checkpoints/ and adapter/ go here")
    parser.add_argument("--num_epochs", type=float, default=3)
    parser.add_argument("--max_steps", type=int, default=-1, help="optimizer steps; -1: count by --num_epochs")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--warmup_steps", type=int, default=100)
    parser.add_argument("--max_length", type=int, default=512, help="longer training records are left out")
    parser.add_argument("--lora_r", type=int, default=8)
    parser.add_argument("--lora_alpha", type=int, default=16)
    parser.add_argument("--target_modules", default="q_proj,k_proj,v_proj,o_proj",
                        help="attention layers: Llama, Gemma, Qwen; phi-2: q_proj,k_proj,v_proj,dense; gpt2: c_attn")
    parser.add_argument("--quantization", choices=["nf4", "none"], default="nf4", help="nf4: QLoRA; none: LoRA")
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="bfloat16",
                        help="on a GPU; float16 on a card without bfloat16 (a T4); Gemma and Phi-2 overflow float16")
    parser.add_argument("--eval_steps", type=int, default=200, help="a checkpoint and a held-out loss every N steps")
    parser.add_argument("--eval_batch_size", type=int, default=2,
                        help="held-out records per forward pass: its logits are vocabulary-sized per token")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output_dir")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    checkpoints = sorted((c for c in (output_dir / "checkpoints").glob("checkpoint-*") if (c / "trainer_state.json").is_file()),
                         key=lambda c: int(c.name.split("-")[1]))  # complete ones: a save cut short has no state file
    if args.resume and (output_dir / "adapter").exists():
        sys.exit(f"오류: {output_dir}의 학습은 이미 끝났습니다 (어댑터: {output_dir / 'adapter'}). 이어서 할 것이 없습니다")
    if args.resume and not checkpoints:
        sys.exit(f"오류: --resume인데 {output_dir / 'checkpoints'}에 체크포인트가 없습니다. --resume 없이 시작하세요")
    if not args.resume and output_dir.exists() and any(output_dir.iterdir()):
        sys.exit(f"오류: {output_dir}에 이전 학습이 있습니다. 아무것도 바꾸지 않았습니다. 이어서 하려면 --resume, "
                 f"새로 하려면 다른 --output_dir을 고르세요")

    cuda = torch.cuda.is_available()
    dtype = getattr(torch, args.dtype) if cuda else torch.float32
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported(including_emulation=False):
        dtype = torch.float16  # compute capability below 8.0 (a T4): no native bfloat16
    set_seed(args.seed)  # the LoRA matrices' random start, dropout and the data order
    tokenizer = AutoTokenizer.from_pretrained(args.model_name)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked by position, so EOS can pad
    train_set, too_long = [], 0
    for record in read_jsonl(args.dataset_path):
        example, length = tokenize(record, tokenizer, args.max_length)
        if length > args.max_length:
            too_long += 1
        else:
            train_set.append(example)
    eval_set = [tokenize(record, tokenizer, args.max_length)[0] for record in read_jsonl(args.eval_path)]
    print(f"학습 레코드 {len(train_set)}개 ({args.max_length} 토큰보다 길어 뺀 것 {too_long}개), "
          f"검증 레코드 {len(eval_set)}개, 계산 dtype {str(dtype).removeprefix('torch.')}")  # float16 on a T4 (above)
    if not train_set or not eval_set:
        sys.exit("오류: 학습 레코드나 검증 레코드가 없습니다. --max_length를 늘리거나 prepare_dataset.py를 다시 실행하세요")
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=dtype) if args.quantization == "nf4" else None
    model = AutoModelForCausalLM.from_pretrained(args.model_name, dtype=dtype, quantization_config=quantization,
                                                 device_map={"": "cuda:0" if cuda else "cpu"})
    if quantization is not None:
        for module in model.modules():  # bitsandbytes 0.50 on a CPU with AVX512-BF16: its packed 4-bit path has no
            if hasattr(module, "support_avx512bf16_for_cpu"):  # gradient; keep the standard one (a no-op on a GPU)
                module.support_avx512bf16_for_cpu = False
        # freezes the base and keeps norms in fp32; checkpointing is switched on by TrainingArguments below
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model.config.use_cache = False
    lora = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=0.05,
                      target_modules=args.target_modules.split(","), bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.print_trainable_parameters()

    training_args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        num_train_epochs=args.num_epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        per_device_eval_batch_size=args.eval_batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
        lr_scheduler_type="cosine",
        optim="paged_adamw_8bit" if cuda else "adamw_8bit",  # paged: a CUDA feature
        fp16=cuda and dtype == torch.float16,
        bf16=cuda and dtype == torch.bfloat16,
        activation_checkpointing=True,  # one layer's activations at a time, recomputed in the backward pass
        activation_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=10,
        eval_strategy="steps",
        eval_steps=args.eval_steps,
        save_steps=args.eval_steps,
        save_total_limit=2,  # the best checkpoint and the newest
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        report_to=["tensorboard"],  # tensorboard --logdir <output_dir>/checkpoints/runs
        seed=args.seed,
        data_seed=args.seed,
        use_cpu=not cuda,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=train_set, eval_dataset=eval_set,
                      data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100))
    trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if args.resume else None)

    adapter_dir, partial = output_dir / "adapter", output_dir / "adapter.partial"
    trainer.save_model(str(partial))  # the best checkpoint by held-out loss (load_best_model_at_end)
    tokenizer.save_pretrained(str(partial))
    partial.rename(adapter_dir)  # whole or not at all
    best = trainer.state.best_metric
    print(f"어댑터: {adapter_dir} (가장 낮은 검증 세트 손실 {best:.4f}, 스텝 {trainer.state.global_step}까지 학습)")
    if cuda:
        print(f"GPU 메모리 최고치: {torch.cuda.max_memory_allocated() / 1024**3:.2f} GiB")
    return best  # the lowest held-out loss: what a search (notebook 09) minimizes


if __name__ == "__main__":
    main()
