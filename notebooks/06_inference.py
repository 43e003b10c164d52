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
# # 06. 추론 — 학습한 어댑터로 답하기
#
# 05에서 학습한 어댑터를 기본 모델에 얹어 답을 생성하고, 기본 모델과 나란히 비교합니다.
# 이 노트북을 마치면 생성 설정(temperature, top-p, 반복 패널티, 최대 길이, EOS)을 고르고, 답의 품질을 숫자로 확인할 수 있습니다.
#
# ## 학습 목표
# - 어댑터와 메타데이터를 읽고, 다른 기본 모델에서 학습한 어댑터를 거부한다.
# - 한 번 읽은 모델에서 어댑터를 켜고 끄며(`disable_adapter`) 기본 모델과 비교한다.
# - 탐욕(greedy) 생성과 샘플링(sampling)의 차이를 보고, 토큰이 나오는 대로 스트리밍한다.
# - held-out 손실, EOS로 끝난 비율, 한글 비율, 토큰/s를 잰다.
#
# ## 예상 소요 시간
# README의 표를 보세요. 마지막 셀이 실제 실행 시간을 출력합니다.

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 어댑터 읽기
#
# 05의 결과(`outputs/05_training/<프로필>/adapter`)를 씁니다. 없으면 같은 레시피로 지금 학습합니다.
# 메타데이터(`course_adapter.json`)의 기본 모델과 가중치 해시가 이 컴퓨터의 모델과 다르면 읽지 않습니다.

# %%
from pathlib import Path

from course_utils.adapter import ensure_adapter, load_adapter_model

adapter_dir = ensure_adapter(profile, Path("outputs") / "05_training" / profile.name)
model, tokenizer, meta = load_adapter_model(adapter_dir, profile)
print(f"adapter: {adapter_dir} · base {meta['base_model']} · template {meta['template']} · step {meta['global_step']}")

# %%
from course_utils.adapter import AdapterMismatchError, check_adapter

other = "gemma-3-270m" if profile.model != "gemma-3-270m" else "smollm2-135m-instruct"
try:
    check_adapter(adapter_dir, other)
except AdapterMismatchError as err:
    print("거부:", err)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 생성 설정
#
# - `max_new_tokens`: 새로 만들 토큰의 최대 개수. EOS가 나오면 그 전에 멈춥니다.
# - 탐욕 생성(`do_sample=False`): 매번 확률이 가장 큰 토큰. 같은 입력이면 늘 같은 답.
# - 샘플링: `temperature`(낮을수록 보수적), `top_p`(누적 확률 p 안의 토큰만), `repetition_penalty`(>1이면 반복을 줄임).
#
# ## 3. 기본 모델 대 학습한 모델 (탐욕 생성)
#
# 같은 모델 객체에서 `with model.disable_adapter():` 안에서는 어댑터가 꺼집니다. 모델을 두 번 읽을 필요가 없습니다.
# 질문은 학습에 쓰지 않은 평가 레코드와 시드 질문입니다.

# %%
import pandas as pd

from course_utils.data import load_heldout
from course_utils.inference import answer_with_stats

n_show = min(8, profile.train.probe_questions)
questions = ["한국의 수도는 어디인가요?"] + [r["instruction"] for r in load_heldout() if not r["input"]][: n_show - 1]
tuned_rows, base_rows = [], []
for q in questions:
    tuned_rows.append(answer_with_stats(model, tokenizer, q, template=meta["template"]))
    with model.disable_adapter():
        base_rows.append(answer_with_stats(model, tokenizer, q, template=meta["template"]))
pd.DataFrame({"question": questions, "base": [r["answer"][:60] for r in base_rows],
              "fine-tuned": [r["answer"][:60] for r in tuned_rows]})

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. 샘플링
#
# 같은 질문을 샘플링으로 세 번 생성합니다. 시드를 고정했으므로 다시 실행해도 같은 세 답이 나옵니다.

# %%
import torch

torch.manual_seed(0)
for i in range(3):
    row = answer_with_stats(model, tokenizer, "한국의 수도는 어디인가요?", template=meta["template"], do_sample=True,
                            temperature=0.7, top_p=0.9, repetition_penalty=1.1)
    print(f"sample {i + 1}: {row['answer']}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. 스트리밍
#
# 사람이 보는 화면에서는 토큰이 나오는 대로 보여 줍니다 (`TextIteratorStreamer`).

# %%
from course_utils.inference import stream_answer

answer = stream_answer(model, tokenizer, "한국의 수도는 어디인가요?", template=meta["template"])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. 품질을 숫자로
#
# - held-out 답변 손실: 05와 같은 평가 레코드 (어댑터 켬/끔)
# - EOS로 끝난 비율: `max_new_tokens` 전에 스스로 멈춘 답의 비율
# - 한글 비율: 답의 공백 아닌 글자 중 한글 음절의 비율
# - 토큰/s: 생성 속도

# %%
from course_utils.inference import quality_signals
from course_utils.prompts import encode, pad_id
from course_utils.train import heldout_loss

held = [encode(r, tokenizer, profile.seq_len, meta["template"]) for r in load_heldout()[: profile.train.heldout_records]]
loss_tuned = heldout_loss(model, held, pad_id(tokenizer))
with model.disable_adapter():
    loss_base = heldout_loss(model, held, pad_id(tokenizer))
signals = {"base": quality_signals(base_rows), "fine-tuned": quality_signals(tuned_rows)}
quality = pd.DataFrame([{"model": name, "held-out loss": round(loss, 4), "EOS stop %": round(100 * s["eos_stop_share"], 1),
                         "Hangul %": round(100 * s["hangul_share"], 1), "tokens/s": round(s["tokens_per_second"], 1)}
                        for (name, s), loss in zip(signals.items(), [loss_base, loss_tuned], strict=True)]).set_index("model")
quality

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. 생성 놀이터
#
# 질문을 바꾸고, temperature(0이면 탐욕 생성)와 top-p를 움직이고, 어댑터를 켜고 끄며 직접 비교해 보세요.
# "생성"을 누르거나 어댑터 버튼을 누르면 새로 생성합니다 (샘플링은 시드 0으로 고정).

# %%
from course_utils.widgets import generation_playground

generation_playground(model, tokenizer, meta["template"])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
print(f"held-out 답변 손실: 기본 {loss_base:.3f} -> 학습 후 {loss_tuned:.3f}")
print(f"EOS로 끝난 답: {100 * signals['base']['eos_stop_share']:.0f} % -> {100 * signals['fine-tuned']['eos_stop_share']:.0f} %")
print(f"시드 질문의 답: {answer}")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 풀이는 `notebooks/solutions/06_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# 탐욕 생성(`do_sample=False`)으로 같은 질문을 두 번 하면 같은 답이 나올까요? (True / False)

# %%
from course_utils.exercises.inference import check_06_basic

answer = None  # True or False
check_06_basic(answer, model, tokenizer)

# %% [markdown]
# ### 응용
# 어댑터를 끈 상태(`with model.disable_adapter():`)에서 탐침 질문 처음 5개 중 몇 개를 맞힐까요?

# %%
from course_utils.exercises.inference import check_06_applied

answer = None  # correct answers out of 5
check_06_applied(answer, model, tokenizer)

# %% [markdown]
# ### 도전
# held-out 처음 4개 레코드의 답변 손실은 어댑터를 켜면 끌 때보다 몇 % 줄어들까요?

# %%
from course_utils.exercises.inference import check_06_challenge

answer = None  # percent
check_06_challenge(answer, model, tokenizer)
