"""Hyperparameter search (notebook 09): Optuna over learning rate, LoRA rank/alpha, target set and LoRA variant.

Each trial is a short training run (``profile.tuning.steps``) scored by its lowest held-out answer loss on
``tuning.heldout_records`` records; the held-out loss at every ``tuning.eval_steps`` is reported to Optuna,
whose median pruner stops trials that fall behind. A finished trial also records its forgetting (the change of the
loss on general Korean and English text, ``course_utils.forgetting``) as the user attributes ``forgetting_ko`` and
``forgetting_en``: not optimized, shown beside the held-out loss so the trade-off is visible. ``compare`` then
trains the best settings and the profile's own settings the same short way on the full held-out set, and the
profile's settings once more with another seed: the difference between those two is the run-to-run noise the gain
is judged against.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

SEARCH_SPACE = {"learning_rate": (1e-4, 2e-3), "r": (4, 8, 16), "targets": ("attention", "all-linear"),
                "variant": ("lora", "rslora", "dora", "pissa", "olora", "loftq")}


def search_space(profile) -> dict:
    """``SEARCH_SPACE`` with the variants that work on the profile's base (``variants.variants_for``: PiSSA/OLoRA on
    full precision, LoftQ on 4-bit)."""
    from .variants import variants_for

    works = variants_for(profile.quantization)
    return {**SEARCH_SPACE, "variant": tuple(v for v in SEARCH_SPACE["variant"] if v in works)}


# how compare()'s runs are labelled where a learner reads them
RUN_NAMES = {"best": "가장 좋은 설정", "default": "기본 설정", "default, seed+1": "기본 설정, 시드+1"}

def with_settings(profile, learning_rate: float, r: int, targets: str, variant: str | None = None,
                  steps: int | None = None, heldout_records: int | None = None, seed: int | None = None,
                  eval_steps: int | None = None):
    """``profile`` with these LoRA/learning-rate settings (alpha = 2 r, as the course's profiles use; ``variant``
    None keeps the profile's), optionally a shorter schedule (no warmup beyond a tenth of it), another held-out size
    or seed."""
    t = profile.train
    steps = steps or t.max_steps
    every = eval_steps or t.eval_steps
    train = dataclasses.replace(
        t, learning_rate=learning_rate, max_steps=steps, epochs=None if steps else t.epochs,
        warmup_steps=min(t.warmup_steps, (steps or 10) // 10), eval_steps=every, save_steps=every,
        heldout_records=heldout_records or t.heldout_records, seed=t.seed if seed is None else seed)
    lora = dataclasses.replace(profile.lora, r=r, alpha=2 * r, targets=targets, variant=variant or profile.lora.variant)
    return dataclasses.replace(profile, lora=lora, train=train)


def _pruning_callback(trial):
    import optuna
    from transformers import TrainerCallback

    class ReportHeldout(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            trial.report(metrics["eval_loss"], state.global_step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"스텝 {state.global_step}의 검증 세트 손실 {metrics['eval_loss']:.4f}")

    return ReportHeldout()


STUDY = "study.db"  # the study, in Optuna's own storage, beside the trial folders
COMPARISON = "comparison.json"


def fresh_storage(folder) -> str:
    """Optuna's storage URL for ``folder/study.db``, the folder made and an earlier study removed (09's own study is
    made again on every run; ``load_study`` reads it back)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / STUDY).unlink(missing_ok=True)
    return f"sqlite:///{Path(folder).resolve() / STUDY}"


def run_trial(profile, settings: dict, trial, folder, base: dict) -> float:
    """Train one trial's settings (``with_settings``: 09's short schedule) into ``folder/trial-N``, report each held-out
    loss to the pruner, record what it made the model forget (``trial.user_attrs``) and return its best held-out loss.
    ``base`` caches the base model's general-text losses, the same in every trial (measured in the first)."""
    from .forgetting import base_losses, measure
    from .memory import free
    from .train import train

    tuning = profile.tuning
    p = with_settings(profile, **settings, steps=tuning.steps, heldout_records=tuning.heldout_records,
                      eval_steps=tuning.eval_steps)
    free()  # what the last trial left (a pruned one stops inside train()) goes before this one loads
    result = train(p, Path(folder) / f"trial-{trial.number}", if_exists="replace", measure_test=False,  # a choice:
                   callbacks=[_pruning_callback(trial)], progress=lambda message: None)  # dev only
    if not base:
        base.update(base_losses(result.model, result.tokenizer, profile.train.general_texts))
    for language, f in measure(result.model, result.tokenizer, profile.train.general_texts, before=base).items():
        trial.set_user_attr(f"forgetting_{language}", f.change)  # what the trial broke (course_utils.forgetting)
    result.model = None  # one model at a time: the next trial loads its own
    return min(e["eval_loss"] for e in result.log_history if "eval_loss" in e)


def trial_line(trial) -> str:
    """One line per finished trial for the learner: its settings, then its held-out loss and forgetting, or where the
    pruner stopped it."""
    import optuna

    value = (f"{trial.value:.4f}, 망각 한국어 {trial.user_attrs['forgetting_ko']:+.4f} 영어 "
             f"{trial.user_attrs['forgetting_en']:+.4f}" if trial.state == optuna.trial.TrialState.COMPLETE else
             f"스텝 {max(trial.intermediate_values)}에서 가지치기로 중단")
    return (f"시도 {trial.number}: lr {trial.params['learning_rate']:.2e}, r {trial.params['r']}, "
            f"{trial.params['targets']}, {trial.params['variant']} -> {value}")


def search(profile, folder, progress=print):
    """Notebook 09's search as one call (tests, and the solutions notebook when 09's study is not stored):
    ``profile.tuning.trials`` Optuna trials, a seeded TPE sampler and a median pruner, each trial ``run_trial``; returns
    the study (``folder/study.db``). 09 writes the same ``create_study`` / ``objective`` / ``optimize`` in its own cell
    (the learner's code); tests/test_tuning.py checks that the two ask for the same study and the same suggestions."""
    import optuna

    from .memory import free

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, base = search_space(profile), {}
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=profile.train.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2,
                                                                   n_warmup_steps=profile.tuning.eval_steps),
                                storage=fresh_storage(folder), study_name="lora")

    def objective(trial):
        lo, hi = space["learning_rate"]
        settings = {"learning_rate": trial.suggest_float("learning_rate", lo, hi, log=True),
                    "r": trial.suggest_categorical("r", list(space["r"])),
                    "targets": trial.suggest_categorical("targets", list(space["targets"])),
                    "variant": trial.suggest_categorical("variant", list(space["variant"]))}
        return run_trial(profile, settings, trial, folder, base)

    study.optimize(objective, n_trials=profile.tuning.trials, callbacks=[lambda study, trial: progress(trial_line(trial))])
    free()
    return study


def load_study(folder):
    """The study ``search`` stored in ``folder`` (None when there is none)."""
    import optuna

    path = Path(folder) / STUDY
    return optuna.load_study(study_name="lora", storage=f"sqlite:///{path.resolve()}") if path.exists() else None


def compare(profile, best: dict, folder, progress=print) -> dict:
    """Best settings vs the profile's own, each trained ``tuning.steps`` steps and scored on the profile's full
    held-out set; the profile's own settings a second time with another seed (the noise). Returns the results
    by name: "best", "default", "default, seed+1", without their models (one model at a time: each run's adapter is
    in its ``adapter_dir``, read back with ``adapter.load_adapter_model``)."""
    from .memory import free
    from .train import train

    steps = profile.tuning.steps
    own = {"learning_rate": profile.train.learning_rate, "r": profile.lora.r, "targets": profile.lora.targets,
           "variant": profile.lora.variant}
    runs = {"best": (best, 0), "default": (own, 0), "default, seed+1": (own, 1)}
    results = {}
    for name, (settings, offset) in runs.items():
        p = with_settings(profile, **settings, steps=steps, seed=profile.train.seed + offset, eval_steps=steps)
        free()
        results[name] = train(p, Path(folder) / name.replace(", ", "-").replace("+", ""), if_exists="replace",
                              progress=lambda message: None)
        results[name].model = None
        progress(f"{RUN_NAMES[name]}: 시험 세트 손실 {results[name].heldout_loss_before:.4f} -> "
                 f"{results[name].heldout_loss_after:.4f}")
    from .files import write_text

    write_text(Path(folder) / COMPARISON, json.dumps({n: {"heldout_loss_before": r.heldout_loss_before,
                                                          "heldout_loss_after": r.heldout_loss_after}
                                                      for n, r in results.items()}, indent=2))
    free()
    return results


def load_comparison(folder) -> dict | None:
    """The held-out losses ``compare`` stored in ``folder`` (None when there are none), by run name."""
    from types import SimpleNamespace

    path = Path(folder) / COMPARISON
    if not path.exists():
        return None
    return {n: SimpleNamespace(**r, loss_drop=1 - r["heldout_loss_after"] / r["heldout_loss_before"])
            for n, r in json.loads(path.read_text(encoding="utf-8")).items()}


def verdict(results: dict) -> dict:
    """Gain of the best settings over the defaults, and the seed-to-seed noise of the defaults (nats/token)."""
    gain = results["default"].heldout_loss_after - results["best"].heldout_loss_after
    noise = abs(results["default"].heldout_loss_after - results["default, seed+1"].heldout_loss_after)
    return {"gain": gain, "noise": noise, "beyond_noise": gain > noise}


def best_profile(profile, study, name: str | None = None):
    """The profile with the best trial's settings and the profile's full schedule: what training with it means."""
    p = study.best_params
    tuned = with_settings(profile, p["learning_rate"], p["r"], p["targets"], p.get("variant"))
    return dataclasses.replace(tuned, name=name or f"{profile.name}-tuned", train=dataclasses.replace(
        tuned.train, max_steps=profile.train.max_steps, epochs=profile.train.epochs,
        warmup_steps=profile.train.warmup_steps, eval_steps=profile.train.eval_steps,
        save_steps=profile.train.save_steps))


def trials_figure(study):
    """Two panels: each trial's held-out loss by step (pruned ones dashed), and the learning rate and rank of each
    trial against its best held-out loss."""
    import matplotlib.pyplot as plt
    import optuna
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for t in study.trials:
        steps = sorted(t.intermediate_values)
        pruned = t.state == optuna.trial.TrialState.PRUNED
        left.plot(steps, [t.intermediate_values[s] for s in steps], "--" if pruned else "-", marker="o", ms=3,
                  label=f"#{t.number}{' (중단)' if pruned else ''}")
    left.set_xlabel("옵티마이저 스텝 (step)")
    left.set_ylabel("검증 세트 답변 손실 (nats/토큰)")
    left.set_title("시도별 검증 세트 손실 (점선: 가지치기로 중단된 시도)")
    left.legend(fontsize=7, ncol=2)
    for t in study.trials:
        best = min(t.intermediate_values.values())
        right.scatter(t.params["learning_rate"], best, s=30 * t.params["r"] / 4,
                      marker="o" if t.params["targets"] == "attention" else "s")
        right.annotate(f"#{t.number} {t.params.get('variant', '')}", (t.params["learning_rate"], best), fontsize=7)
    right.set_xscale("log")
    # plain "3e-04" labels: matplotlib's default 10^-4 labels are mathtext, whose minus sign (U+2212) the Hangul
    # font lacks ("Font 'default' does not have a glyph for '\u2212'")
    right.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}"))
    right.xaxis.set_minor_formatter(NullFormatter())
    right.set_xlabel("학습률 (log)")
    right.set_ylabel("시도의 가장 낮은 검증 세트 손실 (nats/토큰)")
    right.set_title("학습률과 손실 (크기: r, ●: attention, ■: all-linear)")
    fig.tight_layout()
    return fig
