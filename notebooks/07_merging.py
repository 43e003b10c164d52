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

# %% [markdown] slideshow={"slide_type": "slide"}
# # 07. 병합 — 어댑터를 모델에 합치기
#
# LoRA 어댑터를 기본 가중치에 더해(`merge_and_unload`) 하나의 독립 모델로 만들고, 정말 같은 모델인지 숫자로 확인합니다.
# 이 노트북을 마치면 병합 모델을 저장·배포하고, QLoRA 어댑터를 어디에 병합해야 하는지 설명할 수 있습니다.
#
# ## 학습 목표
# - W' = W + (α/r)·B·A로 병합하고, 어댑터 모델과 병합 모델의 로짓 차이(max |Δlogit|)를 잰다.
# - `save_pretrained`(safetensors)로 저장하고 평범한 `AutoModelForCausalLM`으로 다시 읽는다.
# - 기본 모델 · 어댑터 · 병합 모델의 디스크 크기를 비교한다.
# - QLoRA 어댑터의 세 가지 병합(4비트 모델 / 원래 가중치 / nf4를 푼 가중치)을 비교한다.
#
# ## 예상 소요 시간
# README의 표를 보세요. 마지막 셀이 실제 실행 시간을 출력합니다.

# %%
import time

from course_utils.notebook import setup
from course_utils.units import MIB

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 어댑터 모델과 기준 로짓
#
# 05의 어댑터를 읽고(없으면 학습), 평가 레코드 몇 개의 로짓을 병합 전에 계산해 둡니다.
# 병합 dtype은 명시적으로 fp32입니다: fp16에서 W + BA를 더하면 합이 fp16으로 반올림되어 차이가 커집니다.
# gpu8gb 프로필이라도 여기서는 기본 모델을 양자화하지 않고 fp32로 읽습니다 (4비트 병합은 4절).

# %%
from pathlib import Path

import torch

from course_utils.adapter import ensure_adapter, load_adapter_model
from course_utils.data import load_heldout
from course_utils.merge import batch_logits, max_logit_diff
from course_utils.prompts import encode, pad_id

MERGE_DTYPE = torch.float32  # explicit: the merged weights are stored in this dtype
adapter_dir = ensure_adapter(profile, Path("outputs") / "05_training" / profile.name)
model, tokenizer, meta = load_adapter_model(adapter_dir, profile, full_precision=MERGE_DTYPE)
examples = [encode(r, tokenizer, profile.seq_len, meta["template"]) for r in load_heldout()[:8]]
pad = pad_id(tokenizer)
reference, mask = batch_logits(model, examples, pad)
print(f"adapter {adapter_dir} · {len(examples)} held-out inputs · logits {tuple(reference.shape)}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 병합하고 확인하기
#
# fp32에서 병합은 덧셈 한 번이므로 차이는 부동소수점 반올림 수준이어야 합니다. 허용 오차를 정하고 직접 잽니다.

# %%
TOLERANCE = 1e-3  # max |Δlogit| allowed between adapter model and merged model (fp32)
merged = model.merge_and_unload()
merged_logits, _ = batch_logits(merged, examples, pad)
delta = max_logit_diff(merged_logits, reference, mask)
print(f"max |Δlogit| adapter vs merged: {delta:.2e} (tolerance {TOLERANCE:g}) -> {'OK' if delta < TOLERANCE else 'FAIL'}")
print("q_proj after merge:", type(merged.get_decoder().layers[0].self_attn.q_proj).__name__)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. 저장하고 새로 읽기
#
# 병합 모델은 평범한 transformers 모델이라 peft 없이 `AutoModelForCausalLM.from_pretrained`로 읽힙니다.
# Gemma로 만든 병합 모델은 Gemma 파생물이므로 Gemma 이용 약관 안내(`NOTICE`)를 함께 저장합니다.

# %%
import torch
from transformers import AutoModelForCausalLM

from course_utils.merge import save_merged

out_dir = save_merged(merged, tokenizer, Path("outputs") / "07_merged" / profile.name,
                      gemma_notice=meta["base_model"].startswith("gemma"))
reloaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=MERGE_DTYPE)
reload_delta = max_logit_diff(batch_logits(reloaded, examples, pad)[0], reference, mask)
print(sorted(p.name for p in out_dir.iterdir()))
print(f"max |Δlogit| adapter vs reloaded merged model: {reload_delta:.2e} -> {'OK' if reload_delta < TOLERANCE else 'FAIL'}")

# %%
import pandas as pd

from course_utils.loading import model_source
from course_utils.merge import folder_bytes

sizes = {"base model (safetensors cache)": folder_bytes(model_source(profile.model)) if profile.device == "cpu" else None,
         "adapter": folder_bytes(adapter_dir), "merged model": folder_bytes(out_dir)}
pd.DataFrame([{"what": k, "MiB": round(v / MIB, 2) if v else None} for k, v in sizes.items()]).set_index("what")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. QLoRA 어댑터는 어디에 병합할까
#
# QLoRA는 nf4로 양자화된 가중치 위에서 어댑터를 학습합니다. 병합할 곳은 세 가지입니다.
# 1. **4비트 모델 자체**: 층은 `Linear4bit`로 남고, W + BA를 다시 nf4로 양자화합니다. 다시 읽을 때도 bitsandbytes가 필요합니다.
# 2. **원래의 전체 정밀도 가중치**: 병합 자체는 정확하지만, 어댑터가 학습한 가중치(nf4로 반올림된 것)와 다릅니다.
# 3. **nf4를 푼(dequantize) 가중치**: 어댑터가 실제로 본 가중치라 학습한 동작을 그대로 재현합니다.
#
# nf4로 읽은 모델에서 짧게 학습한 어댑터로 세 가지를 모두 잽니다 (기준: nf4 모델 + 병합하지 않은 어댑터).
# 마지막 행 (1′)은 대조 실험입니다: 0인 어댑터를 4비트 모델에 병합하면 아무것도 바뀌지 않아야 합니다.

# %%
from course_utils.merge import qlora_merges, qlora_profile
from course_utils.train import train

qprofile = qlora_profile(profile)
qlora_dir = Path("outputs") / "07_qlora" / profile.name
qresult = train(qprofile, qlora_dir)
print(f"QLoRA adapter: {qresult.global_step} steps on the nf4 model, held-out loss "
      f"{qresult.heldout_loss_before:.3f} -> {qresult.heldout_loss_after:.3f}")

# %%
merges = pd.DataFrame(qlora_merges(profile, qresult.adapter_dir, examples, pad)).set_index("merge")
merges["max |Δlogit| vs nf4+adapter"] = merges["max |Δlogit| vs nf4+adapter"].map(lambda x: f"{x:.2e}")
merges["held-out loss"] = merges["held-out loss"].round(4)
merges

# %% [markdown]
# 결과를 읽는 법: (3)은 기준과 거의 같은 손실을 내야 하고, (2)는 nf4 오차만큼 달라집니다.
# (1)과 (1′)의 Δ가 크다면 4비트 재양자화 병합 경로 자체가 가중치를 바꾼 것입니다 — 이 강좌의 CPU 환경
# (peft 0.21 + bitsandbytes 0.50)에서는 0인 어댑터조차 로짓을 크게 바꿨습니다. 그래서 배포용 병합은 (3)을 권합니다.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
print(f"fp32 병합: max |Δlogit| {delta:.2e}, 저장 후 다시 읽기 {reload_delta:.2e} (허용 {TOLERANCE:g})")
print(f"크기: 어댑터 {sizes['adapter'] / MIB:.2f} MiB, 병합 모델 {sizes['merged model'] / MIB:.1f} MiB")
for name, r in merges.to_dict("index").items():
    print(f"{name}: Δ {r['max |Δlogit| vs nf4+adapter']}, loss {r['held-out loss']}")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 풀이는 `notebooks/solutions/07_solutions.ipynb`에 있습니다.

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
check_07_applied(wrong_merged, reference, mask, examples, pad, TOLERANCE)

# %% [markdown]
# ### 도전
# 병합하면 기본 모델의 가중치 텐서 중 몇 개가 바뀔까요? 병합 전 어댑터 모델(`fresh`)로 확인합니다.

# %%
from course_utils.exercises.merging import check_07_challenge

fresh, _, _ = load_adapter_model(adapter_dir, profile, full_precision=MERGE_DTYPE)
answer = None  # changed weight tensors
check_07_challenge(answer, fresh)
