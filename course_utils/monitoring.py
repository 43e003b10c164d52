"""Watching a training run: one printed line per logging step, and a live loss plot for notebooks.

Both are ``TrainerCallback``s that ``course_utils.train.train`` accepts. The printed line replaces the
Trainer's tqdm bar and log dicts: in an executed notebook a bar is a widget whose stored text stays at
"0%", and a dict of strings is hard to read.
"""
from __future__ import annotations

import time

from transformers import TrainerCallback


def format_log(step: int, max_steps: int, logs: dict, seconds: float) -> str:
    """``step 40/220 · loss 1.269 · lr 4.70e-04 · grad norm 4.03 · 56.9 s`` from a Trainer log entry."""
    parts = [f"step {step}/{max_steps}"]
    for key, label, fmt in (("loss", "loss", "{:.4g}"), ("eval_loss", "held-out loss", "{:.4f}"),
                            ("learning_rate", "lr", "{:.2e}"), ("grad_norm", "grad norm", "{:.3g}")):
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
            self.progress(f"resumed at step {state.global_step}/{state.max_steps}")

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


def live_loss_plot(title: str = "학습 손실(training loss)이 줄어드는 모습"):
    """A TrainerCallback that redraws the loss curve in a notebook at every logging step.

    After a resume the curve starts with the steps already logged in the checkpoint.
    """

    class LiveLossPlot(TrainerCallback):
        def __init__(self):
            self.points: dict[int, float] = {}
            self.handle = None

        def on_train_begin(self, args, state, control, **kwargs):
            for entry in state.log_history:
                if "loss" in entry:
                    self.points[entry["step"]] = float(entry["loss"])

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.points[state.global_step] = float(logs["loss"])
                self.draw(args.max_steps)

        def draw(self, max_steps: int):
            import matplotlib.pyplot as plt
            from IPython.display import display

            steps = sorted(self.points)
            fig, ax = plt.subplots(figsize=(6.5, 3.2))
            ax.plot(steps, [self.points[s] for s in steps], marker="o", ms=3)
            ax.set_xlim(0, max_steps)
            ax.set_xlabel("옵티마이저 스텝 (step)")
            ax.set_ylabel("답변 토큰 손실 (nats/토큰)")
            ax.set_title(title)
            if self.handle is None:
                self.handle = display(fig, display_id=True)
            else:
                self.handle.update(fig)
            plt.close(fig)

    return LiveLossPlot()
