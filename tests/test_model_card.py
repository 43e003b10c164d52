"""The model card of a merged folder states what the run's metadata holds, and the licences."""
import json

import pytest
import yaml

from course_utils.model_card import main, model_card


@pytest.fixture
def run(tmp_path):
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    adapter.mkdir()
    merged.mkdir()
    meta = {"base_model": "gemma-3-270m", "base_model_id": "google/gemma-3-270m", "quantization": "none",
            "license": "Gemma Terms of Use (https://ai.google.dev/gemma/terms)", "template": "koalpaca",
            "profile": "cpu", "heldout": {"records": 96}, "versions": {"torch": "2.13.0", "peft": "0.21.2"},
            "global_step": 220, "best_step": 200, "heldout_loss_before": 2.3539107, "heldout_loss_after": 1.7336462,
            "train_records": 583, "data_source": "beomi/KoAlpaca-v1.1a"}
    (adapter / "course_adapter.json").write_text(json.dumps(meta))
    report = {side: {"chrf": chrf, "eos": {"__count__": eos}, "probes": {"__count__": probes}}
              for side, chrf, eos, probes in [("base", 11.94, [0, 96], [1, 22]), ("adapter", 31.46, [93, 96], [4, 22])]}
    (adapter / "evaluation.json").write_text(json.dumps({"key": "k", "report": report}))
    (merged / "course_merged.json").write_text(json.dumps({"adapter": str(adapter), "merged_heldout_loss": 1.7336461,
                                                           "merged_into_text": "원래의 전체 정밀도 가중치"}))
    return adapter, merged


def test_the_card_states_the_metadata(run):
    adapter, merged = run
    text = model_card(merged)
    front = yaml.safe_load(text.split("---")[1])
    assert front["base_model"] == "google/gemma-3-270m" and front["license"] == "gemma"
    assert front["datasets"] == ["beomi/KoAlpaca-v1.1a"] and front["language"] == ["ko"]
    assert "| 2.3539 | 1.7336 (병합 모델 1.7336) |" in text and "시험 레코드 96개" in text
    assert "| chrF | 11.9 | 31.5 |" in text and "| EOS로 끝난 답 | 0/96 | 93/96 |" in text
    assert "| 확인 질문 정답 (엄격한 채점) | 1/22 | 4/22 |" in text
    assert "CC BY-NC 4.0" in text and "NOTICE" in text and "220 스텝" in text and "스텝 200의 체크포인트" in text


def test_the_command_writes_readme_and_names_a_missing_adapter(run, tmp_path, capsys):
    adapter, merged = run
    main([str(merged)])
    assert (merged / "README.md").read_text(encoding="utf-8") == model_card(merged)
    assert "hf upload" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="course_adapter.json not found: pass the adapter"):
        main([str(merged), "--adapter", str(tmp_path / "nowhere")])


def test_an_adapter_of_09s_search_says_its_test_loss_was_not_measured(run):
    """09's trials measure no test loss (``train(..., measure_test=False)``): their adapters' metadata holds None, and
    the card and the merge's summary line say so instead of failing on the format."""
    from course_utils.merge import merge_summary

    adapter, merged = run
    meta = json.loads((adapter / "course_adapter.json").read_text())
    (adapter / "course_adapter.json").write_text(json.dumps({**meta, "heldout_loss_before": None,
                                                             "heldout_loss_after": None}))
    assert "| 측정 안 함 (09의 탐색 시도) | 측정 안 함 (09의 탐색 시도) (병합 모델 1.7336) |" in model_card(merged)
    line = merge_summary({"adapter": "trials/trial-2/adapter", "merged_into_text": "nf4를 푼 가중치", "merged_into": "dequantized",
                          "merged_heldout_loss": 2.5, "adapter_heldout_loss": None, "adapter_quantization": "nf4"}, 4)
    assert line.endswith("병합 모델 2.5000, 학습 때 평가한 어댑터 측정 안 함 (09의 탐색 시도)")
