"""A standard benchmark path: EleutherAI's lm-evaluation-harness (``lm-eval``) on Korean multiple-choice items.

Korean LLMs are compared on KoBEST, HAE-RAE and KMMLU through lm-evaluation-harness. Those datasets live on the
Hugging Face Hub, so offline the course runs the harness on its own items in KoBEST's four formats (BoolQ, COPA,
SentiNeg, HellaSwag; ``data/kobench``, written for the course, CC BY 4.0): the same prompts, the same
log-likelihood scoring (the choice the model gives the highest log-probability is its answer), the same YAML
task files a learner later points at the real tasks (README: ``--tasks kobest,haerae``).

``evaluate`` scores a model already in memory (the adapter's model, or the same model inside ``disable_adapter()``
for the base), so nothing is loaded twice. Results are counts ("17/30") beside the chance level of the format.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from pathlib import Path

from .evaluation import Count

FOLDER = Path(__file__).parent / "data" / "kobench"
TASKS = ("ko_boolq", "ko_copa", "ko_sentineg", "ko_hellaswag")
TASK_NAMES = {"ko_boolq": "BoolQ형 (문단 읽고 예/아니오)", "ko_copa": "COPA형 (원인·결과 고르기)",
              "ko_sentineg": "SentiNeg형 (부정문의 긍정·부정)", "ko_hellaswag": "HellaSwag형 (이어질 문장 고르기)"}
CHOICES = {"ko_boolq": 2, "ko_copa": 2, "ko_sentineg": 2, "ko_hellaswag": 4}
# the real tasks, for a learner with internet (lm-eval's own task names; README)
ONLINE_TASKS = "kobest_boolq,kobest_copa,kobest_sentineg,kobest_hellaswag,haerae"


def items(task: str) -> list[dict]:
    """The bundled items of ``task`` (one JSON object per line)."""
    lines = (FOLDER / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def task_config(task: str) -> dict:
    """The task's YAML as lm-eval reads it, with the data file's path made absolute (the YAML's path is relative to
    the repository root, for the command line; a notebook runs from ``notebooks/``)."""
    import yaml

    config = yaml.safe_load((FOLDER / f"{task}.yaml").read_text(encoding="utf-8"))
    config["dataset_kwargs"] = {"data_files": {"test": str(FOLDER / f"{task}.jsonl")}}
    return config


@contextlib.contextmanager
def quiet():
    """lm-eval's info lines and progress bars kept out of lesson outputs. Its tqdm bars go to ``sys.stderr``, which is
    captured here and shown only when the evaluation fails; datasets' bars are switched off meanwhile."""
    import datasets

    loggers = [logging.getLogger(name) for name in ("lm-eval", "lm_eval")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    # datasets' "Generating test split" bar is a notebook widget under Jupyter (tqdm.auto), not stderr text
    bars = datasets.utils.logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except Exception:
        sys.stderr.write(captured.getvalue())
        raise
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        if bars:
            datasets.enable_progress_bars()


def samples(model, tokenizer, tasks=TASKS, limit: int | None = None, batch_size: int = 8) -> dict[str, list[dict]]:
    """lm-evaluation-harness's per-item records (``log_samples``) for ``model`` in memory, by task: each has the
    item (``doc``), its ``target``, the log-likelihood of every choice (``filtered_resps``) and ``acc`` (0/1)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    with quiet():
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        # the tasks are whole configs (task_config): lm-eval's own index of ~14,000 task files is not needed, and
        # building it took 12 s of every call
        task_manager = TaskManager(include_defaults=False)
        out = lm_eval.simple_evaluate(model=lm, tasks=[task_config(t) for t in tasks], limit=limit,
                                      task_manager=task_manager, log_samples=True, verbosity="ERROR", random_seed=0,
                                      numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0)
    return {t: out["samples"][t] for t in tasks}


def counts(out: dict) -> dict[str, Count]:
    """Right answers per task from ``simple_evaluate``'s output (made with ``log_samples=True``)."""
    return {t: Count(int(sum(s["acc"] for s in rows)), len(rows)) for t, rows in out["samples"].items()}


def evaluate(model, tokenizer, tasks=TASKS, limit: int | None = None, batch_size: int = 8) -> dict[str, Count]:
    """Accuracy of ``model`` on each task, as counts, scored by lm-evaluation-harness (``simple_evaluate`` over
    ``HFLM`` wrapping the model in memory). ``limit``: the first n items of each task (the smoke profile)."""
    return counts({"samples": samples(model, tokenizer, tasks, limit, batch_size)})


def chance(task: str) -> float:
    """The accuracy of guessing: one over the number of choices."""
    return 1 / CHOICES[task]


def p_guessing(scores: dict[str, Count]) -> float:
    """The probability that guessing uniformly on every item scores at least as many right answers as ``scores``
    (exact: the sum of one binomial per task, each with its own chance level)."""
    from math import comb

    dist = [1.0]
    for t, c in scores.items():
        p = chance(t)
        pmf = [comb(c.total, k) * p ** k * (1 - p) ** (c.total - k) for k in range(c.total + 1)]
        dist = [sum(dist[i] * pmf[k - i] for i in range(max(0, k - c.total), min(k, len(dist) - 1) + 1))
                for k in range(len(dist) + c.total)]
    return sum(dist[total(scores).hits:])


def chance_level(scores: dict[str, Count]) -> float:
    """The accuracy of guessing over all items of ``scores`` (each task weighted by its item count)."""
    return sum(chance(t) * c.total for t, c in scores.items()) / total(scores).total


def compare(model, tokenizer, limit: int | None = None, batch_size: int = 8) -> dict[str, dict[str, Count]]:
    """{"base": ..., "adapter": ...} accuracies of a peft model with its adapter off and on."""
    with model.disable_adapter():
        base = evaluate(model, tokenizer, limit=limit, batch_size=batch_size)
    return {"base": base, "adapter": evaluate(model, tokenizer, limit=limit, batch_size=batch_size)}


def total(counts: dict[str, Count]) -> Count:
    """All tasks together (every item weighs the same)."""
    return Count(sum(c.hits for c in counts.values()), sum(c.total for c in counts.values()))


def table(results: dict[str, dict[str, Count]]):
    """One row per task and one for all items: item count, chance level, base and adapter accuracy with counts."""
    import pandas as pd

    rows = []
    for t in (*TASKS, None):
        pick = (lambda side, t=t: results[side][t]) if t else (lambda side: total(results[side]))
        n = pick("base").total
        level = chance(t) if t else chance_level(results["base"])
        rows.append({"과제": TASK_NAMES[t] if t else "전체", "문항": n, "우연 수준": f"{100 * level:.0f} %",
                     "기본 모델": str(pick("base")), "어댑터": str(pick("adapter")),
                     "차이 (문항)": pick("adapter").hits - pick("base").hits})
    return pd.DataFrame(rows).set_index("과제")
