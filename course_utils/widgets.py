"""Interactive calculators for the notebooks (ipywidgets), thin layers over the tested functions."""
from __future__ import annotations

from .models import MODELS
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
        model=w.Dropdown(options=list(MODELS), value=model, description="model"),
        method=w.Dropdown(options=["full", "lora", "qlora"], value=method, description="method"),
        seq_len=w.IntSlider(value=512, min=128, max=4096, step=128, description="seq"),
        batch_size=w.IntSlider(value=1, min=1, max=16, description="batch"),
        r=w.Dropdown(options=[4, 8, 16, 32, 64], value=8, description="r"),
        gradient_checkpointing=w.Checkbox(value=True, description="grad-ckpt"),
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
