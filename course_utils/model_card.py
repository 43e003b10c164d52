"""A Hugging Face Hub model card (README.md) for a merged model folder, made from the run's own metadata.

    python -m course_utils.model_card outputs/07_merged/cpu [--adapter outputs/05_training/cpu/adapter]

Every number in the card is read from the files the run wrote: ``course_merged.json`` (07: which weights the adapter
went into, the merged model's held-out loss), the adapter's ``course_adapter.json`` (05: base model, licence,
recipe, held-out loss before and after) and its ``evaluation.json`` (05/06: chrF, EOS, probes). The card names the
base model's licence (the Gemma NOTICE travels in the folder) and the data licence (KoAlpaca is CC BY-NC 4.0:
non-commercial). Uploading is ``hf upload <user>/<name> <folder> .`` after ``hf auth login`` (README, 08).
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from .merge import MERGED_METADATA, loss_text

HUB_LICENSES = {"gemma": "gemma", "apache": "apache-2.0", "mit": "mit"}  # the Hub's licence ids, by licence text
KOALPACA = "beomi/KoAlpaca-v1.1a"


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def card_facts(merged_dir, adapter_dir=None) -> dict:
    """What the card states, each value from the run's metadata files."""
    merged_dir = Path(merged_dir)
    merged = _read(merged_dir / MERGED_METADATA)
    adapter = Path(adapter_dir or merged["adapter"])
    if not (adapter / "course_adapter.json").exists():
        raise FileNotFoundError(f"{adapter}/course_adapter.json not found: pass the adapter this folder was merged "
                                f"from with --adapter (05's outputs/05_training/<profile>/adapter)")
    meta = _read(adapter / "course_adapter.json")
    licence = meta["license"]
    facts = {
        "base_model": meta["base_model_id"], "license_text": licence,
        "license": next((hub for key, hub in HUB_LICENSES.items() if key in licence.lower()), "other"),
        "data_source": meta["data_source"], "train_records": meta["train_records"], "profile": meta["profile"],
        "global_step": meta["global_step"], "best_step": meta["best_step"], "template": meta["template"],
        "heldout_records": meta["heldout"]["records"], "heldout_loss_before": meta["heldout_loss_before"],
        "heldout_loss_after": meta["heldout_loss_after"], "merged_heldout_loss": merged["merged_heldout_loss"],
        "merged_into": merged["merged_into_text"], "quantization": meta["quantization"], "versions": meta["versions"],
    }
    evaluation = adapter / "evaluation.json"
    if evaluation.exists():
        report = _read(evaluation)["report"]
        for side in ("base", "adapter"):
            s = report[side]
            facts[side] = {"chrf": s["chrf"], "eos": s["eos"]["__count__"], "probes": s["probes"]["__count__"]}
    koalpaca = "koalpaca" in facts["data_source"].lower()
    facts["datasets"] = [KOALPACA] if KOALPACA in facts["data_source"] else []
    facts["data_license"] = ("CC BY-NC 4.0 (KoAlpaca): 비상업적 이용만 허용" if koalpaca
                             else "CC BY 4.0 (강좌의 번들 데이터)")
    return facts


def model_card(merged_dir, adapter_dir=None) -> str:
    """The README.md text: YAML front matter the Hub reads, then the card in Korean."""
    f = card_facts(merged_dir, adapter_dir)
    front = {"base_model": f["base_model"], "license": f["license"], "language": ["ko"], "library_name": "transformers",
             "pipeline_tag": "text-generation", "tags": ["lora", "peft", "korean", "lora-8gb-course"]}
    if f["datasets"]:
        front["datasets"] = f["datasets"]
    lines = ["---", yaml.safe_dump(front, allow_unicode=True, sort_keys=False).strip(), "---", "",
             f"# {f['base_model']} + LoRA (강좌 \"LoRA on an 8 GB GPU\", 프로필 {f['profile']})", "",
             f"{f['base_model']}에 LoRA 어댑터를 학습해 {f['merged_into']}에 병합한 모델입니다. 프롬프트 형식은 "
             f"`{f['template']}`(`### 질문: … ### 답변:`)이고, 폴더의 chat template이 같은 형식을 만듭니다.", "",
             "## 라이선스", "",
             f"- 기본 모델: {f['license_text']} (폴더의 NOTICE 파일을 함께 배포하세요)",
             f"- 학습 데이터: {f['data_license']}", "",
             "## 학습", "",
             f"- 데이터: {f['data_source']}, 학습 레코드 {f['train_records']:,}개",
             f"- {f['global_step']} 스텝, 어댑터는 검증 세트 손실이 가장 낮은 스텝 {f['best_step']}의 체크포인트",
             f"- 기본 모델의 양자화: {f['quantization']}; 버전: " +
             ", ".join(f"{k} {v}" for k, v in f["versions"].items()), "",
             "## 측정값 (이 실행의 메타데이터에서)", "",
             "| 측정 | 기본 모델 | 학습 후 |", "|---|---|---|",
             f"| 시험 세트 답변 손실 (nats/토큰, 시험 레코드 {f['heldout_records']}개) | {loss_text(f['heldout_loss_before'])} | "
             f"{loss_text(f['heldout_loss_after'])} (병합 모델 {f['merged_heldout_loss']:.4f}) |"]
    if "adapter" in f:
        b, a = f["base"], f["adapter"]
        lines += [f"| chrF | {b['chrf']:.1f} | {a['chrf']:.1f} |",
                  f"| EOS로 끝난 답 | {b['eos'][0]}/{b['eos'][1]} | {a['eos'][0]}/{a['eos'][1]} |",
                  f"| 확인 질문 정답 (엄격한 채점) | {b['probes'][0]}/{b['probes'][1]} | {a['probes'][0]}/{a['probes'][1]} |"]
    lines += ["", "강좌에서 적은 데이터로 학습한 교육용 모델입니다. 사실 질문에는 틀린 답을 낼 수 있습니다: 위의 확인 질문 정답 수를 보세요."]
    return "\n".join(lines) + "\n"


def write_model_card(merged_dir, adapter_dir=None) -> Path:
    from .files import write_text

    path = Path(merged_dir) / "README.md"
    write_text(path, model_card(merged_dir, adapter_dir))
    return path


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m course_utils.model_card", description=__doc__.splitlines()[0])
    parser.add_argument("merged", help="a merged model folder (07)")
    parser.add_argument("--adapter", help="the adapter it was merged from (default: the path in course_merged.json)")
    args = parser.parse_args(argv)
    try:
        path = write_model_card(args.merged, args.adapter)
    except (FileNotFoundError, KeyError) as err:
        raise SystemExit(f"error: {err}") from None
    print(f"모델 카드를 썼습니다: {path}. 올리기: hf auth login, 그다음 hf upload <사용자>/<이름> {args.merged} .")


if __name__ == "__main__":
    main()
