"""Checks for the exercises at the end of notebooks 01-07 (기초 / 응용 / 도전).

Each ``check_…`` computes the right answer itself, compares it with the learner's, prints
"정답" or "아직" with a reason that points the way without giving the number away, and returns
a ``Verdict``. An unanswered exercise (``None``) is "아직", never an error, so notebooks run
top to bottom. Worked solutions are in ``notebooks/solutions/``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .units import GIB, MIB

SYSTEM_LINE = "### 시스템: 친절하고 정확하게 답하세요.\n\n"
EXAMPLE_RECORD = {"instruction": "다음 문장을 존댓말로 바꿔 주세요.", "input": "밥 먹었어?", "output": "진지 드셨어요?"}
SEED_MATRIX_SHAPE = (1024, 1024)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok


def _verdict(ok: bool, right: str, not_yet: str) -> Verdict:
    v = Verdict(ok, f"정답 ✅ {right}" if ok else f"아직 🔸 {not_yet}")
    print(v.message)
    return v


def _unanswered(answer) -> Verdict | None:
    if answer is None:
        v = Verdict(False, "아직 🔸 answer에 답을 넣고 이 셀을 다시 실행하세요.")
        print(v.message)
        return v
    return None


def _close(answer, truth: float, rel: float) -> bool:
    return isinstance(answer, (int, float)) and not isinstance(answer, bool) and math.isclose(answer, truth, rel_tol=rel)


def _direction(answer, truth) -> str:
    return "너무 큽니다" if answer > truth else "너무 작습니다"


# ---- 01 VRAM budgeting -------------------------------------------------------------------------

def check_01_basic(answer_mib) -> Verdict:
    """기초: GPT-2 124M의 모든 가중치를 fp16으로 저장하면 몇 MiB? (1% 이내)"""
    from .models import count_params, meta_model

    if (v := _unanswered(answer_mib)) is not None:
        return v
    truth = count_params(meta_model("gpt2")).total * 2 / MIB
    hint = "fp16은 값 하나에 2바이트입니다." if _close(answer_mib, truth * 2, 0.05) or _close(answer_mib, truth / 2, 0.05) \
        else f"{_direction(answer_mib, truth)} count_params(meta_model('gpt2')).total로 값의 개수부터 세어 보세요."
    return _verdict(_close(answer_mib, truth, 0.01), f"{truth:.1f} MiB", hint)


def check_01_applied(answer_ratio) -> Verdict:
    """응용: TinyLlama QLoRA(seq 512, batch 1)에서 체크포인팅을 끄면 활성화 메모리는 몇 배? (5% 이내)"""
    from .vram import estimate_vram

    if (v := _unanswered(answer_ratio)) is not None:
        return v
    on = estimate_vram("tinyllama-1.1b", "qlora", 512, 1, gradient_checkpointing=True).terms["activations"]
    off = estimate_vram("tinyllama-1.1b", "qlora", 512, 1, gradient_checkpointing=False).terms["activations"]
    truth = off / on
    return _verdict(_close(answer_ratio, truth, 0.05), f"{truth:.1f}배: 층마다 저장값 전부 대신 층 입력만 남기기 때문입니다.",
                    f"{_direction(answer_ratio, truth)} estimate_vram(..., gradient_checkpointing=True/False)의 "
                    f"terms['activations']를 비교하세요.")


def check_01_challenge(answer_batch) -> Verdict:
    """도전: Phi-2 LoRA(fp16 가중치, seq 512, 체크포인팅 켬)가 8 GiB에 들어가는 가장 큰 batch_size는?"""
    from .vram import estimate_vram

    if (v := _unanswered(answer_batch)) is not None:
        return v

    def total(b):
        return estimate_vram("phi-2", "lora", 512, b, gradient_checkpointing=True).total

    truth = 1
    while total(truth + 1) <= 8 * GIB:
        truth += 1
    if not isinstance(answer_batch, int) or answer_batch < 1:
        return _verdict(False, "", "batch_size는 1 이상의 정수입니다.")
    if total(answer_batch) > 8 * GIB:
        return _verdict(False, "", f"batch {answer_batch}이면 추정 {total(answer_batch) / GIB:.2f} GiB로 8 GiB를 넘습니다.")
    return _verdict(answer_batch == truth, f"batch {truth}: {total(truth) / GIB:.2f} GiB",
                    f"batch {answer_batch}은 들어가지만({total(answer_batch) / GIB:.2f} GiB) 더 키울 수 있습니다.")


# ---- 02 quantization ---------------------------------------------------------------------------

def seed_matrix() -> torch.Tensor:
    """The exercise matrix: seed 0, normal values with std 0.02 (like a trained weight), 1024 x 1024."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn(*SEED_MATRIX_SHAPE, generator=gen) * 0.02


def check_02_basic(answer_mib) -> Verdict:
    """기초: 4096×4096 행렬을 nf4 + 이중 양자화로 저장하면 몇 MiB? (상수 포함, 0.5% 이내)"""
    from .vram import weight_bytes

    if (v := _unanswered(answer_mib)) is not None:
        return v
    data, constants = weight_bytes(4096 * 4096, "nf4", double_quant=True)
    truth = (data + constants) / MIB
    hint = "absmax 같은 상수를 빠뜨렸습니다." if _close(answer_mib, data / MIB, 0.001) else \
        f"{_direction(answer_mib, truth)} 값 하나에 4비트, 그리고 블록마다 상수가 붙습니다(weight_bytes)."
    return _verdict(_close(answer_mib, truth, 0.005), f"{truth:.3f} MiB", hint)


def check_02_applied(answer_blocksize) -> Verdict:
    """응용: seed_matrix()를 blocksize 64와 256으로 nf4 양자화하면 평균 절대 오차가 더 작은 쪽은?"""
    from .quantization import quantize_nf4

    if (v := _unanswered(answer_blocksize)) is not None:
        return v
    w = seed_matrix()
    errors = {b: quantize_nf4(w, blocksize=b).mean_abs_error for b in (64, 256)}
    truth = min(errors, key=errors.get)
    return _verdict(answer_blocksize == truth, f"blocksize {truth}: 블록이 작을수록 absmax가 값에 가깝게 맞춰집니다.",
                    "quantize_nf4(seed_matrix(), blocksize=...)의 mean_abs_error를 두 번 재서 비교하세요.")


def check_02_challenge(answer_ratio) -> Verdict:
    """도전: seed_matrix()에서 nf4 상대 오차 ÷ int8 상대 오차는? (5% 이내)"""
    from .quantization import quantize_int8, quantize_nf4

    if (v := _unanswered(answer_ratio)) is not None:
        return v
    w = seed_matrix()
    truth = quantize_nf4(w).relative_error / quantize_int8(w).relative_error
    return _verdict(_close(answer_ratio, truth, 0.05), f"{truth:.1f}배: 4비트는 16개 값, 8비트는 255개 값입니다.",
                    f"{_direction(answer_ratio, truth)} 두 RoundTrip의 relative_error를 나누세요 (nf4가 분자).")


# ---- 03 LoRA config ----------------------------------------------------------------------------

def unseen_model():
    """A small model of an architecture the course never uses (GPT-NeoX, as in Pythia), random weights."""
    from transformers import AutoModelForCausalLM, GPTNeoXConfig

    torch.manual_seed(0)
    config = GPTNeoXConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=256, max_position_embeddings=256)
    return AutoModelForCausalLM.from_config(config)


def check_03_basic(answer_bytes, model_key: str, r: int = 16) -> Verdict:
    """기초: 이 모델에 r=16 LoRA(attention)를 붙이면 어댑터 텐서는 몇 바이트(fp32)? 저장한 파일과도 비교합니다."""
    import tempfile
    from pathlib import Path

    from peft import get_peft_model

    from .loading import load_model
    from .lora import lora_config, lora_param_count
    from .profiles import LoraSettings

    if (v := _unanswered(answer_bytes)) is not None:
        return v
    truth = 4 * lora_param_count(model_key, r, "attention")
    base = load_model(model_key)
    with tempfile.TemporaryDirectory() as tmp:
        probe = get_peft_model(base, lora_config(LoraSettings(r=r, alpha=2 * r, dropout=0.0, targets="attention"), base))
        probe.save_pretrained(tmp)
        file_bytes = (Path(tmp) / "adapter_model.safetensors").stat().st_size
    return _verdict(_close(answer_bytes, truth, 0.001),
                    f"{truth:,} B; 저장한 파일은 {file_bytes:,} B (차이 {file_bytes - truth:,} B는 safetensors 헤더)",
                    f"{_direction(answer_bytes, truth)} 층마다 A(r×d_in)와 B(d_out×r), 값 하나에 4바이트입니다.")


def check_03_applied(answer_targets) -> Verdict:
    """응용: unseen_model()의 attention 선형층 target_modules 이름(집합)은?"""
    from .lora import discover_targets

    if (v := _unanswered(answer_targets)) is not None:
        return v
    truth = set(discover_targets(unseen_model(), "attention"))
    given = set(answer_targets) if isinstance(answer_targets, (list, tuple, set)) else {answer_targets}
    missing, extra = truth - given, given - truth
    why = ("빠진 attention 층이 있습니다." if missing else "") + (" attention이 아닌 이름이 섞였습니다." if extra else "")
    return _verdict(not missing and not extra, f"{sorted(truth)}", f"{why.strip()} print(unseen_model())로 층 이름을 보세요.")


def check_03_challenge(answer_count) -> Verdict:
    """도전: SmolLM2-135M에 r=8 LoRA를 모든 선형층(all-linear)에 붙이면 학습 파라미터는 몇 개?"""
    from .lora import lora_param_count

    if (v := _unanswered(answer_count)) is not None:
        return v
    truth = lora_param_count("smollm2-135m-instruct", 8, "all-linear")
    attention = lora_param_count("smollm2-135m-instruct", 8, "attention")
    hint = "attention 층만 셌습니다: MLP의 gate/up/down도 선형층입니다." if answer_count == attention else \
        f"{_direction(answer_count, truth)} 층마다 r×(d_in + d_out)을 더하세요."
    return _verdict(answer_count == truth, f"{truth:,}개", hint)


# ---- 04 formatting -----------------------------------------------------------------------------

def check_04_basic(answer_masked, tokenizer) -> Verdict:
    """기초: EXAMPLE_RECORD를 koalpaca 템플릿으로 인코딩하면 레이블이 -100인 토큰은 몇 개?"""
    from .prompts import encode

    if (v := _unanswered(answer_masked)) is not None:
        return v
    ex = encode(EXAMPLE_RECORD, tokenizer)
    truth = ex["labels"].count(-100)
    return _verdict(answer_masked == truth, f"{truth}개 = 프롬프트 토큰 수", f"{_direction(answer_masked, truth)} "
                    "encode(EXAMPLE_RECORD, tokenizer)의 labels에서 -100을 세어 보세요.")


def check_04_applied(answer_extra, tokenizer) -> Verdict:
    """응용: 프롬프트 앞에 SYSTEM_LINE을 붙이면 마스킹되는 토큰이 몇 개 늘어나나? 답변 레이블은 그대로인가요?"""
    from .prompts import format_koalpaca, prompt_ids

    if (v := _unanswered(answer_extra)) is not None:
        return v
    prompt, _ = format_koalpaca(EXAMPLE_RECORD)
    truth = len(prompt_ids(SYSTEM_LINE + prompt, tokenizer)) - len(prompt_ids(prompt, tokenizer))
    return _verdict(answer_extra == truth, f"{truth}개 늘어나고, 답변 레이블(마지막 EOS 포함)은 그대로입니다.",
                    f"{_direction(answer_extra, truth)} SYSTEM_LINE이 붙은 프롬프트와 원래 프롬프트의 토큰 수 차이입니다.")


def check_04_challenge(answer_share, tokenizer, max_len: int = 64) -> Verdict:
    """도전: 번들 학습 데이터 중 max_len(64) 토큰을 넘는(잘리는) 레코드의 비율(0~1)은? (0.5%p 이내)"""
    from .data import BUNDLED_TRAIN, read_records
    from .prompts import encode

    if (v := _unanswered(answer_share)) is not None:
        return v
    records = read_records(BUNDLED_TRAIN)
    truth = sum(encode(r, tokenizer)["length"] > max_len for r in records) / len(records)
    ok = isinstance(answer_share, (int, float)) and abs(answer_share - truth) <= 0.005
    hint = "비율은 0~1 사이 값입니다 (퍼센트가 아니라)." if isinstance(answer_share, (int, float)) and answer_share > 1 \
        else f"{_direction(answer_share, truth)} encode(...)['length']는 자르기 전 길이입니다."
    return _verdict(ok, f"{truth:.3f} ({truth * 100:.1f} %)", hint)


# ---- 05 training -------------------------------------------------------------------------------

def _stale(meta: dict, *keys: str) -> Verdict | None:
    missing = [k for k in keys if k not in meta]
    if missing:
        v = Verdict(False, f"아직 🔸 이 어댑터의 메타데이터에 {missing}가 없습니다: 이전 버전으로 학습된 어댑터입니다. "
                           f"05를 처음부터 다시 실행해 어댑터를 새로 만드세요.")
        print(v.message)
        return v
    return None


def check_05_basic(answer_steps, profile, meta: dict) -> Verdict:
    """기초: 이 프로필에서 학습 데이터를 한 번 다 보는(1 에폭) 옵티마이저 스텝 수는? (meta = 어댑터 메타데이터)"""
    for v in (_unanswered(answer_steps), _stale(meta, "train_records")):
        if v is not None:
            return v
    truth = math.ceil(meta["train_records"] / (profile.batch_size * profile.grad_accum))
    return _verdict(answer_steps == truth, f"{truth} 스텝 (레코드 {meta['train_records']}개 ÷ 유효 배치 "
                    f"{profile.batch_size * profile.grad_accum})", f"{_direction(answer_steps, truth)} 유효 배치 = "
                    "batch_size × grad_accum, 마지막 배치는 덜 차도 한 스텝입니다.")


def check_05_applied(answer_ppl, meta: dict) -> Verdict:
    """응용: 학습 후 held-out 답변 손실의 퍼플렉서티(perplexity)는? (1% 이내)"""
    if (v := _unanswered(answer_ppl)) is not None:
        return v
    truth = math.exp(meta["heldout_loss_after"])
    return _verdict(_close(answer_ppl, truth, 0.01), f"{truth:.2f} = exp(손실)",
                    f"{_direction(answer_ppl, truth)} 손실은 토큰당 nats입니다: math.exp를 쓰세요.")


def check_05_challenge(answer_seconds, profile, meta: dict, tokenizer) -> Verdict:
    """도전: 이번 실행의 tokens/s로, 학습 데이터 3 에폭에 몇 초가 걸릴까? (패딩 제외 토큰 기준, 15% 이내)"""
    from .train import prepare_data

    for v in (_unanswered(answer_seconds), _stale(meta, "tokens_per_second")):
        if v is not None:
            return v
    train_set, _, _ = prepare_data(profile, tokenizer)
    tokens = sum(len(e["input_ids"]) for e in train_set)
    truth = 3 * tokens / meta["tokens_per_second"]
    return _verdict(_close(answer_seconds, truth, 0.15), f"약 {truth:.0f} s (에폭당 {tokens:,} 토큰)",
                    f"{_direction(answer_seconds, truth)} 에폭당 토큰 = 학습 예제들의 input_ids 길이 합입니다.")


# ---- 06 inference ------------------------------------------------------------------------------

def check_06_basic(answer_same, model, tokenizer, question: str = "한국의 수도는 어디인가요?") -> Verdict:
    """기초: 탐욕 생성(do_sample=False)으로 같은 질문을 두 번 하면 답이 같은가? (True/False)"""
    from .inference import answer_with_stats

    if (v := _unanswered(answer_same)) is not None:
        return v
    a, b = (answer_with_stats(model, tokenizer, question, max_new_tokens=16)["answer"] for _ in range(2))
    truth = a == b
    return _verdict(answer_same is truth, "탐욕 생성은 매번 가장 확률이 높은 토큰을 고르므로 결정적입니다.",
                    "두 번 생성해 직접 비교해 보세요.")


def check_06_applied(answer_count, model, tokenizer, n: int = 5) -> Verdict:
    """응용: 어댑터를 끈 상태(`with model.disable_adapter():`)에서 탐침 질문 처음 5개 중 몇 개를 맞히나?"""
    from .data import load_probes
    from .inference import run_probes

    if (v := _unanswered(answer_count)) is not None:
        return v
    with model.disable_adapter():
        truth = sum(r.correct for r in run_probes(model, tokenizer, load_probes()[:n]))
    return _verdict(answer_count == truth, f"{truth}/{n}개 (기본 모델)", f"{_direction(answer_count, truth)} "
                    "run_probes를 disable_adapter() 안에서 실행하세요.")


def check_06_challenge(answer_drop_pct, model, tokenizer, n: int = 4) -> Verdict:
    """도전: held-out 처음 4개 레코드의 답변 손실이 어댑터를 켜면 끌 때보다 몇 % 줄어드나? (0.5%p 이내)"""
    from .data import load_heldout
    from .prompts import encode, pad_id
    from .train import heldout_loss

    if (v := _unanswered(answer_drop_pct)) is not None:
        return v
    examples = [encode(r, tokenizer) for r in load_heldout()[:n]]
    on = heldout_loss(model, examples, pad_id(tokenizer))
    with model.disable_adapter():
        off = heldout_loss(model, examples, pad_id(tokenizer))
    truth = 100 * (1 - on / off)
    ok = isinstance(answer_drop_pct, (int, float)) and abs(answer_drop_pct - truth) <= 0.5
    return _verdict(ok, f"{truth:.1f} % ({off:.3f} → {on:.3f})", f"{_direction(answer_drop_pct, truth)} "
                    "heldout_loss(model, examples, pad)를 어댑터 켬/끔으로 재고 100 × (1 − 켬/끔)을 계산하세요.")


# ---- 07 merging --------------------------------------------------------------------------------

def check_07_basic(answer_mib, merged_dir) -> Verdict:
    """기초: 병합 모델 폴더의 가중치 파일(*.safetensors) 크기를 파라미터 수로 예측하면 몇 MiB? (1% 이내)"""
    from pathlib import Path

    if (v := _unanswered(answer_mib)) is not None:
        return v
    truth = sum(p.stat().st_size for p in Path(merged_dir).glob("*.safetensors")) / MIB
    return _verdict(_close(answer_mib, truth, 0.01), f"파일 {truth:.1f} MiB",
                    f"{_direction(answer_mib, truth)} 병합 모델은 어댑터 없이 fp32 가중치만 저장합니다 "
                    "(묶인(tied) 가중치는 한 번만).")


def check_07_applied(wrong_merged, reference_logits, mask, examples: list[dict], pad: int, tolerance: float) -> Verdict:
    """응용: 다른 어댑터를 병합해 병합 검사가 실패하게 만드세요 (wrong_merged: 잘못 병합한 모델)."""
    from .merge import batch_logits, max_logit_diff

    if (v := _unanswered(wrong_merged)) is not None:
        return v
    got, _ = batch_logits(wrong_merged, examples, pad)
    delta = max_logit_diff(reference_logits, got, mask)
    return _verdict(delta > tolerance, f"max |Δlogit| {delta:.3g} > 허용 {tolerance:g}: 검사가 잘못된 병합을 잡아냈습니다.",
                    f"max |Δlogit| {delta:.3g}는 허용 범위 안입니다: 같은 어댑터를 병합한 것 같습니다. "
                    "LoRA B를 바꾼 다른 어댑터를 병합해 보세요.")


def check_07_challenge(answer_changed, adapter_model) -> Verdict:
    """도전: 병합하면 기본 모델의 가중치 텐서 중 몇 개가 바뀌나? (adapter_model: 병합 전 peft 모델)"""
    if (v := _unanswered(answer_changed)) is not None:
        return v
    truth = sum(1 for name, _ in adapter_model.named_modules() if name.endswith("lora_A"))
    return _verdict(answer_changed == truth, f"{truth}개: LoRA가 붙은 선형층의 weight만 W + (α/r)·B·A로 바뀝니다.",
                    f"{_direction(answer_changed, truth)} 병합 전후 state_dict를 텐서별로 비교해 세어 보세요.")
