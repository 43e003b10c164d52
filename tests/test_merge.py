import torch
from conftest import randomize_lora_b, tiny_model
from transformers import AutoModelForCausalLM

from course_utils.lora import attach_lora
from course_utils.merge import GEMMA_NOTICE, batch_logits, folder_bytes, max_logit_diff, save_merged
from course_utils.profiles import LoraSettings


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
    from course_utils.loading import load_tokenizer

    tok = load_tokenizer("gemma-3-270m")
    out = save_merged(merged, tok, tmp_path / "merged", base_model="gemma-3-270m")
    assert (out / "NOTICE").read_text() == GEMMA_NOTICE
    assert (out / "tokenizer.model").stat().st_size > 1_000_000  # rebuilt from the Gemma GGUF for llama.cpp
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert max_logit_diff(batch_logits(reloaded, examples, 0)[0], ref, mask) < 1e-4
    assert folder_bytes(out) > (out / "model.safetensors").stat().st_size
    save_merged(merged, load_tokenizer("smollm2-135m-instruct"), tmp_path / "merged",
                base_model="smollm2-135m-instruct")  # re-run replaces cleanly
    assert not (out / "NOTICE").exists() and not (out / "tokenizer.model").exists()
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
    out = save_merged(merged, tok, tmp_path / "merged", base_model="smollm2-135m-instruct")
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert max_logit_diff(batch_logits(reloaded, examples, tok.eos_token_id)[0], ref, mask) < TOLERANCE
    answer = generate_answer(reloaded, tok, "한국의 수도는 어디인가요?", max_new_tokens=8)
    assert isinstance(answer, str) and len(answer) > 0


# ---- merging a QLoRA adapter: equivalences measured against the floors of the same comparison ---------------------

def _eval(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_deep_copy_of_a_4bit_model_is_the_same_model(tmp_path):
    """Ruled out as a cause: 07 copies the nf4 model once per merge."""
    import copy

    from conftest import tiny_nf4_models

    from course_utils.merge import nf4_weights

    nf4, _ = tiny_nf4_models(tmp_path)
    ids = torch.randint(0, 1000, (2, 16))
    _eval(nf4, ids)
    twin = copy.deepcopy(nf4)
    assert torch.equal(_eval(twin, ids), _eval(nf4, ids))
    a, b = nf4_weights(nf4), nf4_weights(twin)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_zero_adapter_merged_into_4bit_changes_weights_by_at_most_one_rerounding_step(tmp_path):
    from conftest import tiny_nf4_models

    from course_utils.merge import zero_merge_change
    from course_utils.profiles import LoraSettings

    nf4, _ = tiny_nf4_models(tmp_path)
    _eval(nf4, torch.randint(0, 1000, (2, 16)))  # 07 computes logits before it merges
    change, step = zero_merge_change(nf4, LoraSettings(8, 16, 0.0, "all-linear"))
    assert 0 < step < 0.01  # weights of std 0.02: a re-rounding moves some of them by a fraction of a level
    assert change <= step


def test_merge_into_the_dequantized_base_reproduces_nf4_plus_adapter(tmp_path):
    """(3) vs nf4 + adapter: max |Δlogit| <= 1.5 x the floor. The floor is the larger of the 4-bit kernel's (nf4 model
    vs its de-quantized fp32 copy) and the fp32 rounding of the merge itself (same weights, merged vs not)."""
    import copy

    from conftest import tiny_nf4_models
    from peft import PeftModel

    from course_utils.lora import attach_lora
    from course_utils.profiles import LoraSettings

    nf4, dequantized = tiny_nf4_models(tmp_path / "base")
    ids = torch.randint(0, 1000, (2, 16))
    kernel_floor = (_eval(nf4, ids) - _eval(dequantized, ids)).abs().max().item()
    torch.manual_seed(0)
    adapter = randomize_lora_b(attach_lora(copy.deepcopy(nf4), LoraSettings(8, 16, 0.0, "attention")), 0, 0.05)
    adapter.save_pretrained(tmp_path / "adapter")
    reference = _eval(adapter, ids)
    unmerged = PeftModel.from_pretrained(copy.deepcopy(dequantized), str(tmp_path / "adapter"))
    unmerged_logits = _eval(unmerged, ids)
    merged = _eval(unmerged.merge_and_unload(), ids)
    merge_floor = (merged - unmerged_logits).abs().max().item()
    delta = (merged - reference).abs().max().item()
    assert (reference - _eval(nf4, ids)).abs().max() > 1e-2  # the adapter does change the output
    assert delta <= 1.5 * max(kernel_floor, merge_floor), (delta, kernel_floor, merge_floor)
