"""Interactive calculators for the notebooks (ipywidgets), thin layers over the tested functions."""
from __future__ import annotations

from .models import MODELS
from .prompts import KOALPACA
from .units import GIB
from .vram import BUDGET_8GB, TERMS, estimate_vram


def estimate_html(model: str, method: str, seq_len: int, batch_size: int, r: int,
                  gradient_checkpointing: bool) -> str:
    """The calculator's output: one row per term in GiB and the total against 8 GiB."""
    est = estimate_vram(model, method, seq_len, batch_size, r, gradient_checkpointing=gradient_checkpointing,
                        optimizer="adamw_torch" if method == "full" else "paged_adamw_8bit")
    rows = "".join(f"<tr><td>{TERMS[k]}</td><td style='text-align:right'>{v / GIB:.3f}</td></tr>"
                   for k, v in est.terms.items())
    verdict = "8 GB에 들어갑니다" if est.fits(BUDGET_8GB) else "8 GB를 넘습니다"
    return (f"<table><tr><th>항목</th><th>GiB</th></tr>{rows}"
            f"<tr><td><b>합계</b></td><td style='text-align:right'><b class='vram-total'>{est.total / GIB:.3f}</b>"
            f"</td></tr></table><p>{verdict}</p>")


def vram_calculator(model: str = "tinyllama-1.1b", method: str = "qlora"):
    """A widget: model, method, sequence length, batch size, LoRA rank, checkpointing -> estimate."""
    import ipywidgets as w

    controls = dict(
        model=w.Dropdown(options=list(MODELS), value=model, description="모델"),
        method=w.Dropdown(options=["full", "lora", "qlora"], value=method, description="방법"),
        seq_len=w.IntSlider(value=512, min=128, max=4096, step=128, description="길이"),
        batch_size=w.IntSlider(value=1, min=1, max=16, description="배치"),
        r=w.Dropdown(options=[4, 8, 16, 32, 64], value=8, description="r"),
        gradient_checkpointing=w.Checkbox(value=True, description="체크포인팅"),
    )
    out = w.HTML()

    def update(_=None):
        out.value = estimate_html(**{k: c.value for k, c in controls.items()})

    for c in controls.values():
        c.observe(update, names="value")
    update()
    box = w.VBox([*controls.values(), out])
    box.controls, box.output = controls, out
    return box


def playground_answer(model, tokenizer, prompt: str, temperature: float, top_p: float, adapter_on: bool,
                      template: str = KOALPACA, max_new_tokens: int = 48, seed: int = 0) -> dict:
    """One playground generation: greedy at temperature 0, else sampling (seeded); adapter on or off."""
    import contextlib

    import torch

    from .inference import answer_with_stats

    sampling = {"do_sample": False} if temperature <= 0 else {"do_sample": True, "temperature": temperature,
                                                              "top_p": top_p}
    torch.manual_seed(seed)
    off = model.disable_adapter() if not adapter_on else contextlib.nullcontext()
    with off:
        row = answer_with_stats(model, tokenizer, prompt, template=template, max_new_tokens=max_new_tokens, **sampling)
    return {**row, "adapter_on": adapter_on, "temperature": temperature, "top_p": top_p}


def answer_html(row: dict) -> str:
    import html

    state = "어댑터 켬" if row["adapter_on"] else "어댑터 끔 (기본 모델)"
    mode = "탐욕" if row["temperature"] <= 0 else f"샘플링 T={row['temperature']:.2f}, top-p={row['top_p']:.2f}"
    return (f"<p><b class='playground-state'>{state}</b> · {mode} · {row['new_tokens']} 토큰, {row['seconds']:.1f} s"
            f"{' · EOS에서 멈춤' if row['stopped_at_eos'] else ''}</p>"
            f"<div class='playground-answer'>{html.escape(row['answer'])}</div>")


def generation_playground(model, tokenizer, template: str = KOALPACA,
                          prompt: str = "한국의 수도는 어디인가요?", max_new_tokens: int = 48):
    """A widget: prompt box, temperature / top-p sliders, adapter on/off toggle, generate button.

    ``model`` is a peft model (the toggle uses ``disable_adapter``). Temperature 0 means greedy.
    """
    import ipywidgets as w

    controls = dict(
        prompt=w.Textarea(value=prompt, description="질문", layout=w.Layout(width="95%")),
        temperature=w.FloatSlider(value=0.0, min=0.0, max=1.5, step=0.05, description="temperature"),
        top_p=w.FloatSlider(value=0.9, min=0.1, max=1.0, step=0.05, description="top-p"),
        adapter_on=w.ToggleButton(value=True, description="어댑터 켬", tooltip="LoRA 어댑터 켜기/끄기"),
    )
    button = w.Button(description="생성", button_style="primary")
    out = w.HTML()

    def label(_=None):
        controls["adapter_on"].description = "어댑터 켬" if controls["adapter_on"].value else "어댑터 끔"

    def generate(_=None):
        out.value = "<p>생성 중…</p>"
        row = playground_answer(model, tokenizer, **{k: c.value for k, c in controls.items()}, template=template,
                                max_new_tokens=max_new_tokens)
        out.value = answer_html(row)

    controls["adapter_on"].observe(label, names="value")
    controls["adapter_on"].observe(generate, names="value")  # toggling shows the other side at once
    button.on_click(generate)
    generate()
    box = w.VBox([*controls.values(), button, out])
    box.controls, box.output, box.generate = controls, out, generate
    return box
