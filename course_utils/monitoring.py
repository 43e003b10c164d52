"""Watching a training run: one printed line per logging step, and a live loss plot for notebooks.

Both are ``TrainerCallback``s that ``course_utils.train.train`` accepts. The printed line replaces the
Trainer's tqdm bar and log dicts: in an executed notebook a bar is a widget whose stored text stays at
"0%", and a dict of strings is hard to read.
"""
from __future__ import annotations

import math
import os
import time

from transformers import TrainerCallback


def format_log(step: int, max_steps: int, logs: dict, seconds: float) -> str:
    """``스텝 40/220 · 학습 손실 1.269 · 학습률 4.70e-04 · 그래디언트 노름 4.03 · 56.9 s`` from a Trainer log entry."""
    parts = [f"스텝 {step}/{max_steps}"]
    for key, label, fmt in (("loss", "학습 손실", "{:.4g}"), ("eval_loss", "검증 세트 손실", "{:.4f}"),
                            ("learning_rate", "학습률", "{:.2e}"), ("grad_norm", "그래디언트 노름", "{:.3g}")):
        if key in logs:
            parts.append(f"{label} {fmt.format(float(logs[key]))}")
    return " · ".join(parts) + f" · {seconds:.1f} s"


class TextProgress(TrainerCallback):
    """Print one line per logging step (and where a run starts and ends) through ``progress``."""

    def __init__(self, progress=print):
        self.progress = progress
        self.start = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()
        if state.global_step:
            self.progress(f"스텝 {state.global_step}/{state.max_steps}에서 이어 갑니다")

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if any(k in logs for k in ("loss", "eval_loss")):
            self.progress(format_log(state.global_step, state.max_steps, logs, time.perf_counter() - self.start))


def use_text_progress(trainer, progress=print) -> None:
    """Replace the Trainer's bar (tqdm in a terminal, a widget in a notebook) and dict printer by ``TextProgress``."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    for callback in (NotebookProgressCallback, ProgressCallback, PrinterCallback):
        while trainer.pop_callback(callback) is not None:
            pass
    trainer.add_callback(TextProgress(progress))


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite: the run stopped instead of training on garbage."""


class StopOnNaN(TrainerCallback):
    """Stop at the first logged training loss that is NaN or infinite (checked every ``logging_steps``).

    Only the loss is checked: an fp16 run's GradScaler skips steps with infinite gradients on purpose, but a
    loss (computed in fp32 from the logits) that is not finite means the model itself has gone wrong.
    """

    def __init__(self, dtype: str):
        self.dtype = dtype

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            fp16 = (" (fp16에서 값이 넘쳤을 수 있습니다: bf16을 직접 계산하는 GPU(RTX 30xx 이상)라면 dtype을 bfloat16으로, "
                    "아니면 float32로)") if self.dtype == "float16" else ""
            raise TrainingDiverged(f"학습 손실(training loss)이 스텝 {state.global_step}에서 {loss}입니다: 망가진 값으로 "
                                   f"학습을 계속하지 않도록 멈췄습니다. train.learning_rate(지금 {args.learning_rate:g})를 "
                                   f"낮춘 뒤{fp16} 스텝 {state.global_step} 이전의 체크포인트나 처음부터 다시 시작하세요")


def training_callbacks(run, stop_after: int | None = None, extra: list | None = None) -> list:
    """The Trainer callbacks of a course run (``train.Run``): stop after step ``stop_after`` (as an interruption would), stop on a
    NaN loss, Ctrl-C saves a checkpoint and stops, the profile's ``train.report_to`` (TensorBoard in
    ``<output>/tensorboard``; W&B in ``<output>/wandb``, project ``lora-8gb-course`` unless WANDB_PROJECT is set), then
    ``extra``."""
    from transformers import TrainerCallback
    from transformers.integrations import TensorBoardCallback

    class StopAfter(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if stop_after is not None and state.global_step >= stop_after:
                control.should_training_stop = True

    loggers = []
    if "tensorboard" in run.profile.train.report_to:
        tensorboard = TensorBoardCallback()
        tensorboard.logging_dir = str(run.output_dir / "tensorboard")  # the library's callback; rank 0 writes
        loggers.append(tensorboard)
    if "wandb" in run.profile.train.report_to:
        from transformers.integrations import WandbCallback

        os.environ.setdefault("WANDB_PROJECT", "lora-8gb-course")
        os.environ["WANDB_DIR"] = str(run.output_dir)  # wandb.init(dir=...) as WandbCallback calls it
        loggers.append(WandbCallback())
    return [StopAfter(), StopOnNaN(run.profile.dtype), run.ctrl_c.callback(), *loggers, *(extra or [])]


def ema(values: list[float], alpha: float = 0.3) -> list[float]:
    """Exponential moving average (``alpha`` = weight of the newest value), for noisy per-step losses."""
    out = []
    for v in values:
        out.append(v if not out else alpha * v + (1 - alpha) * out[-1])
    return out


def training_figure(log_history: list[dict], max_steps: int | None = None):
    """Four panels from a Trainer's ``log_history``: training loss (raw faint, EMA solid), held-out loss, learning
    rate, gradient norm; x axis = optimizer step. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    def series(key):
        points = sorted({e["step"]: float(e[key]) for e in log_history if key in e}.items())
        return [s for s, _ in points], [v for _, v in points]

    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    steps, loss = series("loss")
    ax = axes[0, 0]
    ax.plot(steps, loss, "o", ms=3, alpha=0.25, color="tab:blue", label="배치별 (원래 값)")
    ax.plot(steps, ema(loss), "-", color="tab:blue", label="지수 이동 평균 (EMA 0.3)")
    ax.set_title("학습 손실 (training loss)")
    ax.set_ylabel("답변 토큰 손실 (nats/토큰)")
    ax.legend(fontsize=8)
    steps, held = series("eval_loss")
    ax = axes[0, 1]
    ax.plot(steps, held, "o-", color="tab:orange")
    if held:
        best = min(range(len(held)), key=held.__getitem__)
        ax.plot([steps[best]], [held[best]], "*", ms=14, color="tab:red", label=f"가장 낮은 값: 스텝 {steps[best]}")
        ax.legend(fontsize=8)
    ax.set_title("검증 세트 손실 (체크포인트를 고르는 레코드)")
    ax.set_ylabel("답변 토큰 손실 (nats/토큰)")
    for ax, key, title, unit in ((axes[1, 0], "learning_rate", "학습률 (learning rate)", "학습률"),
                                 (axes[1, 1], "grad_norm", "그래디언트 노름 (gradient norm, 클리핑 전)", "L2 노름")):
        s, v = series(key)
        ax.plot(s, v, "-", color="tab:green")
        ax.set_title(title)
        ax.set_ylabel(unit)
    for ax in axes[1]:
        ax.set_xlabel("옵티마이저 스텝 (step)")
    if max_steps:
        axes[0, 0].set_xlim(0, max_steps)
    fig.tight_layout()
    return fig


class LiveTrainingPlot(TrainerCallback):
    """Redraw ``training_figure`` in a notebook at every log and evaluation (after a resume, the curves start
    with what the checkpoint had logged)."""

    def __init__(self):
        self.handle = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig = training_figure(state.log_history, state.max_steps)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)
