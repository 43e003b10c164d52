"""The standard benchmark path: the bundled KoBEST-format items, their lm-eval task files, and what the course
reads out of lm-evaluation-harness (counts, base vs adapter, the chance level)."""
import copy
import itertools
import math
from collections import Counter

import pytest

from course_utils import kobench
from course_utils.evaluation import Count

FIELDS = {"ko_boolq": {"paragraph", "question", "label"},
          "ko_copa": {"premise", "question", "alternative_1", "alternative_2", "label"},
          "ko_sentineg": {"sentence", "label"},
          "ko_hellaswag": {"context", "ending_1", "ending_2", "ending_3", "ending_4", "label"}}


def test_the_bundled_items_are_a_hundred_or_more_in_kobest_formats_with_balanced_labels():
    assert sum(len(kobench.items(t)) for t in kobench.TASKS) >= 100
    for task in kobench.TASKS:
        rows = kobench.items(task)
        assert len(rows) >= 25
        assert len({r["id"] for r in rows}) == len(rows)
        assert all(set(r) == FIELDS[task] | {"id"} for r in rows), task
        labels = Counter(r["label"] for r in rows)
        assert set(labels) == set(range(kobench.CHOICES[task])), task
        assert max(labels.values()) <= 0.6 * len(rows), f"{task}: answering one label would beat chance: {labels}"
        if task == "ko_copa":
            assert {r["question"] for r in rows} == {"원인", "결과"}
        texts = [r.get("paragraph", "") + r.get("question", "") + r.get("premise", "") + r.get("sentence", "")
                 + r.get("context", "") for r in rows]
        assert len(set(texts)) == len(texts), f"{task}: a duplicated item"


def test_task_files_name_their_task_and_point_at_the_bundled_data():
    for task in kobench.TASKS:
        config = kobench.task_config(task)
        assert config["task"] == task and config["output_type"] == "multiple_choice"
        path = config["dataset_kwargs"]["data_files"]["test"]
        assert path == str(kobench.FOLDER / f"{task}.jsonl")
    import yaml

    group = yaml.safe_load((kobench.FOLDER / "_ko_course_bench.yaml").read_text(encoding="utf-8"))
    assert group["task"] == list(kobench.TASKS)


def test_the_probability_of_guessing_is_exact():
    assert kobench.p_guessing({"ko_boolq": Count(0, 3)}) == pytest.approx(1.0)
    assert kobench.p_guessing({"ko_boolq": Count(3, 3)}) == pytest.approx(1 / 8)
    # brute force over every way of answering two 2-choice items and one 4-choice item
    outcomes = [a + b + c for a, b, c in itertools.product([0, 1], [0, 1], [0, 1, 0, 0])]
    for hits in range(4):
        want = sum(o >= hits for o in outcomes) / len(outcomes)
        assert kobench.p_guessing({"ko_copa": Count(hits // 2, 2), "ko_hellaswag": Count(hits - hits // 2, 1)}) \
            == pytest.approx(want), hits


@pytest.fixture(scope="module")
def scored():
    """lm-eval's records for smoke's SmolLM2 (its first 8 layers, fp32: the wiring is what is checked, at a third of
    the compute): the plain model, and the same model with a random LoRA adapter off and on (two items per task)."""
    from conftest import randomize_lora_b

    from course_utils.loading import load_model, load_tokenizer
    from course_utils.lora import attach_lora
    from course_utils.profiles import LoraSettings

    base, tokenizer = load_model("smollm2-135m-first-8-layers"), load_tokenizer("smollm2-135m-first-8-layers")
    plain = kobench.samples(base, tokenizer, limit=2)
    model = randomize_lora_b(attach_lora(copy.deepcopy(base), LoraSettings(8, 16, 0.0, "all-linear")), 0, 0.05)
    with model.disable_adapter():
        off = kobench.samples(model, tokenizer, limit=2)
    return plain, off, kobench.samples(model, tokenizer, limit=2)


def loglikelihoods(records):
    return [float(ll) for r in records for ll, _ in r["filtered_resps"]]


def test_lm_eval_scores_the_model_in_memory_with_the_adapter_off_and_on(scored):
    plain, off, on = scored
    for task in kobench.TASKS:
        assert [r["doc"]["id"] for r in plain[task]] == [r["id"] for r in kobench.items(task)[:2]]
        assert len(plain[task][0]["filtered_resps"]) == kobench.CHOICES[task]
        assert loglikelihoods(off[task]) == pytest.approx(loglikelihoods(plain[task]), abs=1e-4)  # off = the base
        assert max(abs(a - b) for a, b in zip(loglikelihoods(on[task]), loglikelihoods(off[task]), strict=True)) > 1e-3
        for r in on[task]:  # right = the choice with the highest log-likelihood is the target
            lls = [float(ll) for ll, _ in r["filtered_resps"]]
            assert r["acc"] == float(max(range(len(lls)), key=lls.__getitem__) == int(r["target"]))
            assert all(ll < 0 and math.isfinite(ll) for ll in lls)
    assert kobench.counts({"samples": on}) == {
        t: Count(int(sum(r["acc"] for r in on[t])), 2) for t in kobench.TASKS}


def test_the_table_shows_counts_chance_and_the_difference():
    results = {"base": {"ko_boolq": Count(10, 20), "ko_copa": Count(11, 20), "ko_sentineg": Count(9, 20),
                        "ko_hellaswag": Count(5, 20)},
               "adapter": {"ko_boolq": Count(12, 20), "ko_copa": Count(11, 20), "ko_sentineg": Count(8, 20),
                           "ko_hellaswag": Count(7, 20)}}
    table = kobench.table(results)
    assert list(table.index) == [kobench.TASK_NAMES[t] for t in kobench.TASKS] + ["전체"]
    everything = table.loc["전체"]
    assert everything["문항"] == 80 and everything["기본 모델"] == "35/80 (44 %)" and everything["어댑터"] == "38/80 (48 %)"
    assert everything["차이 (문항)"] == 3 and everything["우연 수준"] == "44 %"  # (3 x 50 % + 25 %) / 4
    assert table.loc[kobench.TASK_NAMES["ko_hellaswag"], "우연 수준"] == "25 %"
