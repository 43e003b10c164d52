import pytest
import torch
from conftest import randomize_lora_b, tiny_model
from transformers import AutoModelForCausalLM

from course_utils.lora import attach_lora
from course_utils.merge import GEMMA_NOTICE, batch_logits, folder_bytes, max_logit_diff, save_merged
from course_utils.profiles import LoraSettings


class Tok:
    def save_pretrained(self, path):
        (path / "tokenizer_config.json").write_text("{}")


def test_merge_matches_adapter_and_reloads_plain(tmp_path):
    model = randomize_lora_b(attach_lora(tiny_model("tinyllama-1.1b"), LoraSettings(8, 16, 0.0, "attention")), 1, 0.05)
    examples = [{"input_ids": list(range(5, 20)), "labels": [-100] * 15},
                {"input_ids": list(range(30, 40)), "labels": [-100] * 10}]
    ref, mask = batch_logits(model, examples, pad=0)
    with model.disable_adapter():
        base, _ = batch_logits(model, examples, pad=0)
    assert max_logit_diff(ref, base, mask) > 1e-3  # the adapter does something
    merged = model.merge_and_unload()
    assert type(merged.model.layers[0].self_attn.q_proj) is torch.nn.Linear
    assert max_logit_diff(batch_logits(merged, examples, 0)[0], ref, mask) < 1e-4
    out = save_merged(merged, Tok(), tmp_path / "merged", gemma_notice=True)
    assert (out / "NOTICE").read_text() == GEMMA_NOTICE
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert max_logit_diff(batch_logits(reloaded, examples, 0)[0], ref, mask) < 1e-4
    assert folder_bytes(out) > (out / "model.safetensors").stat().st_size
    save_merged(merged, Tok(), tmp_path / "merged", gemma_notice=False)  # re-run replaces cleanly
    assert not (out / "NOTICE").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]


def test_max_logit_diff_ignores_padding():
    a = torch.zeros(1, 3, 4)
    b = a.clone()
    b[0, 2] = 100.0
    assert max_logit_diff(a, b, torch.tensor([[1, 1, 0]])) == 0.0


def test_merge_of_the_embedded_model_is_equivalent_and_generates(tmp_path):
    from course_utils.inference import generate_answer
    from course_utils.loading import load_model, load_tokenizer

    TOLERANCE = 1e-3
    model = randomize_lora_b(attach_lora(load_model("smollm2-135m-instruct"), LoraSettings(8, 16, 0.0, "attention")),
                             2, 0.02)
    tok = load_tokenizer("smollm2-135m-instruct")
    examples = [{"input_ids": tok("한국의 수도는 어디인가요?").input_ids, "labels": []},
                {"input_ids": tok("The capital of Korea is").input_ids, "labels": []}]
    ref, mask = batch_logits(model, examples, tok.eos_token_id)
    merged = model.merge_and_unload()
    assert max_logit_diff(batch_logits(merged, examples, tok.eos_token_id)[0], ref, mask) < TOLERANCE
    out = save_merged(merged, tok, tmp_path / "merged", gemma_notice=False)
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert max_logit_diff(batch_logits(reloaded, examples, tok.eos_token_id)[0], ref, mask) < TOLERANCE
    answer = generate_answer(reloaded, tok, "한국의 수도는 어디인가요?", max_new_tokens=8)
    assert isinstance(answer, str) and len(answer) > 0


def test_answer_loss_from_logits_equals_heldout_loss(smollm2):
    from course_utils.data import load_heldout
    from course_utils.loading import load_tokenizer
    from course_utils.merge import answer_loss_from_logits, batch_logits
    from course_utils.prompts import encode, pad_id
    from course_utils.train import heldout_loss

    tok = load_tokenizer("smollm2-135m-instruct")
    examples = [encode(r, tok, 128) for r in load_heldout()[:5]]
    logits, _ = batch_logits(smollm2, examples, pad_id(tok))
    assert answer_loss_from_logits(logits, examples, pad_id(tok)) == pytest.approx(
        heldout_loss(smollm2, examples, pad_id(tok)), rel=1e-4)
