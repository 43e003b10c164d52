from course_utils.units import GIB
from course_utils.vram import estimate_vram
from course_utils.widgets import vram_calculator


def test_calculator_shows_the_estimator_value():
    calc = vram_calculator("tinyllama-1.1b", "qlora")
    expected = estimate_vram("tinyllama-1.1b", "qlora", 512, 1, 8, gradient_checkpointing=True).total / GIB
    assert f"<b class='vram-total'>{expected:.3f}</b>" in calc.output.value
    calc.controls["seq_len"].value = 2048
    longer = estimate_vram("tinyllama-1.1b", "qlora", 2048, 1, 8, gradient_checkpointing=True).total / GIB
    assert f"<b class='vram-total'>{longer:.3f}</b>" in calc.output.value
    assert longer > expected


def test_generation_playground_toggles_the_adapter(tmp_path):
    """Adapter off in the playground gives exactly the base model's greedy answer."""
    from conftest import randomize_lora_b
    from peft import get_peft_model

    from course_utils.inference import answer_with_stats
    from course_utils.loading import load_model, load_tokenizer
    from course_utils.lora import lora_config
    from course_utils.profiles import get_profile
    from course_utils.widgets import generation_playground

    tok = load_tokenizer("smollm2-135m-instruct")
    base_answer = answer_with_stats(load_model("smollm2-135m-instruct"), tok, "한국의 수도는?", max_new_tokens=8)["answer"]
    base = load_model("smollm2-135m-instruct")
    model = randomize_lora_b(get_peft_model(base, lora_config(get_profile("smoke").lora, base)), seed=0, std=0.5)
    box = generation_playground(model, tok, prompt="한국의 수도는?", max_new_tokens=8)
    on_html = box.output.value
    box.controls["adapter_on"].value = False  # the toggle regenerates
    off_html = box.output.value
    assert "어댑터 끔 (기본 모델)" in off_html and "어댑터 켬" in on_html
    assert box.controls["adapter_on"].description == "어댑터 끔"
    import html
    assert f"<div class='playground-answer'>{html.escape(base_answer)}</div>" in off_html
    assert on_html != off_html
