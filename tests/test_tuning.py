"""Hyperparameter search: trials train with the suggested settings, report held-out losses, get pruned, and the
best settings become a profile file the training command accepts."""
import dataclasses

import optuna
import pytest
from conftest import fast_smoke

from course_utils.profiles import get_profile, load_profiles, write_profiles
from course_utils.tuning import (
    _pruning_callback,
    best_profile,
    compare,
    load_comparison,
    load_study,
    search,
    verdict,
    with_settings,
)


def test_settings_change_only_what_is_searched():
    cpu = get_profile("cpu")
    p = with_settings(cpu, 1e-3, 16, "all-linear", steps=40, heldout_records=32, eval_steps=10)
    assert (p.train.learning_rate, p.lora.r, p.lora.alpha, p.lora.targets) == (1e-3, 16, 32, "all-linear")
    assert (p.train.max_steps, p.train.eval_steps, p.train.save_steps, p.train.heldout_records) == (40, 10, 10, 32)
    assert p.train.warmup_steps == 4 and p.model == cpu.model and p.data == cpu.data


def test_a_trial_behind_the_median_is_pruned_at_its_evaluation():
    class Trial:
        reported = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return True

    callback = _pruning_callback(Trial())
    with pytest.raises(optuna.TrialPruned, match="스텝 10의 검증 세트 손실 2.5000"):
        callback.on_evaluate(None, type("S", (), {"global_step": 10})(), None, metrics={"eval_loss": 2.5})
    assert Trial.reported == [(10, 2.5)]


def test_lesson_09_and_search_ask_for_the_same_study_and_suggestions():
    """09 writes the Optuna study and objective in its own cell; ``tuning.search`` repeats them for the tests and the
    solutions notebook. Both must create the same study (its storage: each its own folder), suggest the same settings
    with the same ranges, hand each trial to ``run_trial`` and run ``profile.tuning.trials`` trials."""
    import ast
    import inspect
    from pathlib import Path

    from course_utils import tuning

    def shape(tree):
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        study = next(c for c in calls if ast.unparse(c.func) == "optuna.create_study")
        optimize = next(c for c in calls if ast.unparse(c.func) == "study.optimize")
        trial = next(c for c in calls if ast.unparse(c.func) == "run_trial")
        return ({k.arg: ast.unparse(k.value) for k in study.keywords if k.arg != "storage"},
                ast.unparse(next(k.value for k in study.keywords if k.arg == "storage").func),
                sorted(ast.unparse(c) for c in calls if ast.unparse(c.func).startswith("trial.suggest_")),
                [ast.unparse(a) for a in trial.args[:3]] + [ast.unparse(trial.args[-1])],
                ast.unparse(next(k.value for k in optimize.keywords if k.arg == "n_trials")), ast.unparse(optimize.args[0]))

    lesson = ast.parse((Path(__file__).resolve().parents[1] / "notebooks" / "09_hyperparameters.py").read_text("utf-8"))
    package = ast.parse(inspect.getsource(tuning.search))
    assert shape(lesson) == shape(package)
    assert len(shape(lesson)[2]) == 4  # learning rate, r, targets, variant


def test_search_compare_and_the_tuned_profile_file(tmp_path, monkeypatch):
    """... and one model at a time: when a trial or a comparison run loads its model, no earlier one is alive, not even
    in a reference cycle the collector has not reached yet (at d545876 each trial's model stayed until gc ran, and
    compare() returned all three)."""
    import gc

    from course_utils import loading
    from course_utils import loss as loss_module
    from course_utils.residency import live_models
    from course_utils.timing import tuning_work

    # shortened further: 2 trials of 2 steps, 2 held-out records, 1 general paragraph per language for the trials'
    # forgetting (printed, not compared here); notebook 09 runs smoke's own
    smoke = fast_smoke()
    smoke = dataclasses.replace(smoke, train=dataclasses.replace(smoke.train, heldout_records=2, general_texts=1),
                                tuning=dataclasses.replace(smoke.tuning, trials=2, steps=2, eval_steps=1, heldout_records=2))
    gc.collect()
    before, alive, load = len(live_models()), [], loading.load_profile_model
    monkeypatch.setattr(loading, "load_profile_model", lambda p: alive.append(len(live_models()) - before) or load(p))
    scored, score = [], loss_module.answer_token_losses  # every held-out loss pass goes through it
    monkeypatch.setattr(loss_module, "answer_token_losses", lambda m, b: scored.append(len(b["input_ids"])) or score(m, b))
    gc.disable()  # what the course frees itself, not what the collector happens to find
    try:
        said = []
        study = search(smoke, tmp_path / "trials", progress=said.append)
        results = compare(smoke, study.best_params, tmp_path / "compare", progress=said.append)
    finally:
        gc.enable()
    assert alive == [0] * 5 and all(r.model is None for r in results.values())
    assert sum(scored) == tuning_work(smoke)["eval_samples"]  # 00's and 09's time estimate counts what 09 scores
    assert len(study.trials) == 2 and len(said) == 2 + 3  # a line per trial, then per comparison run
    assert all(sorted(t.intermediate_values) == [1, 2] for t in study.trials)  # held-out loss reported at each evaluation
    assert study.best_value == min(t.value for t in study.trials if t.value is not None)
    stored = load_study(tmp_path / "trials")  # what the solution notebook reads instead of searching again
    assert stored.best_params == study.best_params and len(stored.trials) == 2
    tuned = best_profile(smoke, study)
    assert tuned.name == "smoke-tuned" and tuned.train.learning_rate == study.best_params["learning_rate"]
    assert tuned.train.max_steps == smoke.train.max_steps and tuned.lora.r == study.best_params["r"]
    path = write_profiles({tuned.name: tuned}, tmp_path / "tuned.yaml", comment="best trial of notebook 09")
    assert load_profiles(path)["smoke-tuned"] == tuned  # what `--profiles tuned.yaml --profile smoke-tuned` runs
    assert list(results) == ["best", "default", "default, seed+1"]
    v = verdict(results)
    assert v["noise"] >= 0 and v["beyond_noise"] == (v["gain"] > v["noise"])
    assert verdict(load_comparison(tmp_path / "compare")) == v


def test_the_trials_figure_draws_in_the_hangul_font_without_missing_glyphs(caplog):
    """The learning-rate axis is logarithmic; its labels must not need a glyph NanumGothic lacks (U+2212)."""
    import matplotlib

    matplotlib.use("Agg")
    from course_utils.notebook import korean_plots
    from course_utils.tuning import trials_figure

    korean_plots()
    study = optuna.create_study(direction="minimize")
    for i, (lr, r, targets) in enumerate([(1e-4, 4, "attention"), (3e-4, 8, "all-linear"), (2e-3, 16, "attention")]):
        trial = optuna.trial.create_trial(params={"learning_rate": lr, "r": r, "targets": targets},
                                          distributions={"learning_rate": optuna.distributions.FloatDistribution(1e-4, 2e-3, log=True),
                                                         "r": optuna.distributions.CategoricalDistribution([4, 8, 16]),
                                                         "targets": optuna.distributions.CategoricalDistribution(["attention", "all-linear"])},
                                          value=2.0 - i / 10, intermediate_values={10: 2.5 - i / 10, 20: 2.0 - i / 10})
        study.add_trial(trial)
    fig = trials_figure(study)
    with caplog.at_level("WARNING"):
        fig.canvas.draw()
    assert not [r for r in caplog.records if "does not have a glyph" in r.getMessage()]
    assert [t.get_text() for t in fig.axes[1].get_xticklabels() if t.get_text()] and \
        all("\u2212" not in t.get_text() for t in fig.axes[1].get_xticklabels())
