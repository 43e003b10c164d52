"""Deployment: the prompt format travels with the merged model, GGUF export by llama.cpp's converter reloads
equivalent, and the Ollama Modelfile matches the format."""
import json

import pytest

from course_utils.loading import load_tokenizer
from course_utils.prompts import encode, format_koalpaca, koalpaca_chat_template, prompt_ids


@pytest.mark.parametrize("key", ["smollm2-135m-instruct", "gemma-3-270m"])
def test_chat_template_gives_the_training_prompt_ids(key):
    import copy

    tok = copy.deepcopy(load_tokenizer(key))
    tok.chat_template = koalpaca_chat_template(tok)
    for question in ["한국의 수도는 어디인가요?", "  다음 문장을 존댓말로 바꿔 주세요: 밥 먹었어? ", "What is 2 + 2?"]:
        record = {"instruction": question.strip(), "input": "", "output": "답입니다."}
        chat = tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                       tokenize=True)["input_ids"]
        assert chat == prompt_ids(format_koalpaca(record)[0], tok)
        turn = tok.apply_chat_template([{"role": "user", "content": question},
                                        {"role": "assistant", "content": "답입니다."}], tokenize=True)["input_ids"]
        assert turn == encode(record, tok)["input_ids"]  # the answer and its EOS, exactly as trained
    with pytest.raises(Exception, match="exactly one user message"):
        tok.apply_chat_template([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
                                add_generation_prompt=True)


def test_merged_folder_carries_template_eos_and_decoding(merged_smollm2):
    from transformers import AutoTokenizer, GenerationConfig

    from course_utils.inference import DEFAULT_DECODING

    tok = AutoTokenizer.from_pretrained(merged_smollm2)
    original = load_tokenizer("smollm2-135m-instruct")
    chat = tok.apply_chat_template([{"role": "user", "content": "한국의 수도는?"}], add_generation_prompt=True,
                                   tokenize=True)["input_ids"]
    assert chat == prompt_ids("### 질문: 한국의 수도는?\n\n### 답변:", original)
    config = GenerationConfig.from_pretrained(merged_smollm2)
    assert config.eos_token_id == original.eos_token_id
    assert {k: getattr(config, k) for k in DEFAULT_DECODING} == DEFAULT_DECODING


def test_sentencepiece_model_rebuilt_from_the_gemma_gguf_tokenizes_like_the_course(gemma_spm):
    from sentencepiece import SentencePieceProcessor

    from course_utils.gguf import gguf_path, sentencepiece_model_from_gguf
    from course_utils.splits import load_heldout

    sp = SentencePieceProcessor(model_proto=gemma_spm)  # sentencepiece_model_from_gguf(gemma's GGUF)
    tok = load_tokenizer("gemma-3-270m")
    texts = [f"### 질문: {r['instruction']}\n\n### 답변: {r['output']}" for r in load_heldout("test")]
    assert [sp.encode(t) for t in texts] == [tok(t, add_special_tokens=False).input_ids for t in texts]
    assert sentencepiece_model_from_gguf(gguf_path("smollm2-135m-instruct")) is None  # a GPT-2 style BPE


def test_gguf_f16_export_reloads_equivalent(merged_smollm2, tmp_path):
    """F16: max |Δlogit| within 2x the floor of rounding the merged weights to fp16 (measured here), the same
    greedy answer on at least 95 % of the probe questions, the same tokenizer and held-out loss."""
    from course_utils.data import load_probes
    from course_utils.deploy import compare_exports, export_gguf, modelfile
    from course_utils.inference import DEFAULT_DECODING
    from course_utils.prompts import pad_id
    from course_utils.splits import load_heldout

    tok = load_tokenizer("smollm2-135m-instruct")
    path = export_gguf(merged_smollm2, tmp_path / "gguf", "f16", progress=lambda m: None)
    assert path.name == "model-f16.gguf" and path.stat().st_size > 100_000_000
    questions = [p["question"] for p in load_probes()]
    check = compare_exports(merged_smollm2, tok, {"f16": path}, [encode(r, tok, 128) for r in load_heldout("test")[:8]], questions,
                            pad_id(tok), max_new_tokens=16)["f16"]
    assert check["file"] == "model-f16.gguf" and check["questions"] == len(questions) == 22
    assert 0 < check["fp16_floor"] and check["max_dlogit"] <= 2 * check["fp16_floor"], check
    assert check["same_answers"] >= 0.95 * len(questions), check["differences"]
    assert len(check["differences"]) == len(questions) - check["same_answers"]
    assert check["tokenizer_same"] and abs(check["loss_gguf"] / check["loss_merged"] - 1) < 1e-3
    text = modelfile(path.name, tok, DEFAULT_DECODING, 48)
    assert text.startswith("FROM ./model-f16.gguf\n") and 'TEMPLATE """### 질문: {{ .Prompt }}\n\n### 답변:"""' in text
    assert f'PARAMETER stop "{tok.eos_token}"' in text and "PARAMETER repeat_penalty 1.1" in text
    assert json.loads((merged_smollm2 / "config.json").read_text())["model_type"] == "llama"


def test_export_writes_atomically_and_the_gemma_notice_travels_with_the_gguf(tmp_path, monkeypatch):
    """The file handling around the converter, with a stand-in converter script (the real one runs above)."""
    from course_utils import deploy

    converter = tmp_path / "converter"
    (converter / "gguf-py").mkdir(parents=True)
    (converter / "convert_hf_to_gguf.py").write_text(
        "import sys\nout = sys.argv[sys.argv.index('--outfile') + 1]\nopen(out, 'wb').write(b'GGUF')\n", encoding="utf-8")
    monkeypatch.setattr(deploy, "fetch_converter", lambda progress=print: converter)
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "NOTICE").write_text("Gemma Terms of Use", encoding="utf-8")
    out = deploy.export_gguf(merged, tmp_path / "gguf", "q8_0", progress=lambda m: None)
    assert out.read_bytes() == b"GGUF" and (tmp_path / "gguf" / "NOTICE").read_text(encoding="utf-8") == "Gemma Terms of Use"
    assert sorted(p.name for p in (tmp_path / "gguf").iterdir()) == ["NOTICE", "model-q8_0.gguf"]
    (converter / "convert_hf_to_gguf.py").write_text("import sys\nsys.exit('unsupported architecture')\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="convert_hf_to_gguf.py failed .*unsupported architecture"):
        deploy.export_gguf(merged, tmp_path / "gguf", "f16", progress=lambda m: None)
    assert not (tmp_path / "gguf" / "model-f16.gguf").exists()  # nothing half-written
