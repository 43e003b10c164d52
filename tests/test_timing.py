"""Times told before they are spent (course_utils.timing): measured on this kind of machine, else labelled estimates."""
from __future__ import annotations

import dataclasses
import json

import pytest

from course_utils.profiles import get_profile
from course_utils.timing import (
    SEED_3070,
    compute_ratio,
    describe,
    expected_times,
    planned_steps,
    same_architecture_seed,
    times_table,
    training_work,
    tuning_work,
    work_seconds,
)

RTX_3070 = "GPU NVIDIA GeForce RTX 3070"


def _runtime(folder, profile, kind, date="2026-12-01", seconds=(5.0, 60.0)):
    rows = [{"notebook": "00_setup_check", "seconds": seconds[0]}, {"notebook": "05_training", "seconds": seconds[1]}]
    data = {"date": date, "cpu_count": 2, "profile": profile, "rows": rows, "total_seconds": sum(seconds)}
    if kind:
        data["machine_kind"] = kind
    (folder / f"course_runtime_{profile}_{date}.json").write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("records,batch,accum,epochs,steps", [
    (16, 1, 4, 1, 4), (17, 1, 4, 1, 5), (10_000, 1, 16, 3, 1875), (583, 4, 1, 1, 146), (5, 2, 4, 2.5, 3)])
def test_planned_steps_follow_the_trainers_arithmetic(records, batch, accum, epochs, steps):
    p = get_profile("gpu8gb")
    p = dataclasses.replace(p, batch_size=batch, grad_accum=accum, train=dataclasses.replace(p.train, epochs=epochs))
    assert planned_steps(p, records) == steps
    assert planned_steps(get_profile("cpu"), records) == 64  # a max_steps profile runs its steps


def test_a_measurement_of_this_kind_of_machine_is_measured_and_another_kind_is_an_estimate(tmp_path):
    cpu = get_profile("cpu")
    _runtime(tmp_path, "cpu", "CPU 2 cores, AVX512-BF16", "2026-12-01", (6.0, 900.0))
    _runtime(tmp_path, "cpu", "CPU 2 cores, AVX2", "2026-11-30", (8.0, 1250.0))
    same = expected_times(cpu, tmp_path, "CPU 2 cores, AVX2")
    assert [(r["notebook"], r["seconds"][0], r["how"]) for r in same] == [("00_setup_check", 8.0, "측정"),
                                                                            ("05_training", 1250.0, "측정")]
    other = expected_times(cpu, tmp_path, "CPU 8 cores, AVX2")  # no measurement of this kind: the newest, labelled
    assert {r["how"] for r in other} == {"추정"} and other[1]["seconds"] == (900.0, 900.0)
    assert "CPU 2 cores, AVX512-BF16" in other[1]["source"] and "다른 종류라 추정" in other[1]["source"]
    _runtime(tmp_path, "smoke", None, "2026-11-28")  # an older file that did not record the kind
    assert "벡터 명령어는 기록되지 않음" in expected_times(get_profile("smoke"), tmp_path, "CPU 2 cores, AVX2")[0]["source"]


def test_gpu8gb_without_a_gpu_measurement_estimates_05_and_09_from_the_seeds_3070_figure(tmp_path):
    """gpu8gb's Mi:dm 2.0 Mini has no 3070 figure: the seed's TinyLlama one (the same Llama architecture), divided by
    the ratio of their training compute per token, and the label says so."""
    g = get_profile("gpu8gb")
    rows = {r["notebook"]: r for r in expected_times(g, tmp_path, RTX_3070, records=10_000)}
    assert set(rows) == {"05", "09"} and {r["how"] for r in rows.values()} == {"추정"}
    work = training_work(g, 10_000)
    assert work["steps"] == 1875 and work["train_samples"] == 30_000  # 10,000 records x 3 epochs, batch 1 x 16
    assert same_architecture_seed(g.model) == "tinyllama-1.1b"
    ratio = compute_ratio(g.model, "tinyllama-1.1b", g.seq_len)
    assert 2.0 < ratio < 2.6  # 2.31 B parameters (2.07 B in blocks + a 131k x 1792 output product) against 1.1 B
    low, high = SEED_3070["tinyllama-1.1b"]
    assert rows["05"]["seconds"] == pytest.approx((work_seconds(work, high / ratio), work_seconds(work, low / ratio)))
    assert "같은 구조의 tinyllama-1.1b가 낸 처리량 4–5 샘플/s" in rows["05"]["source"]
    assert f"{ratio:.2f}배" in rows["05"]["source"] and "같다고 가정" in rows["05"]["source"]
    assert "1,875 스텝" in rows["05"]["source"] and "시간 (추정:" in describe(rows["05"])
    # 09's budget is sized to at most an hour on the seed's card, at its slower figure
    assert rows["09"]["seconds"][1] <= 3600 and tuning_work(g)["steps"] == (g.tuning.trials + 3) * g.tuning.steps
    table = times_table(g, tmp_path, RTX_3070, ["00_setup_check", "05_training", "09_hyperparameters"]).data
    assert table.loc["00_setup_check", "예상 시간"] == "없음" and table.loc["05_training", "근거"].startswith("추정")
    # the original design's run (--model tinyllama-1.1b) keeps the seed's own figure, and its "~2 h"
    tiny = {r["notebook"]: r for r in expected_times(dataclasses.replace(g, model="tinyllama-1.1b"), tmp_path, RTX_3070,
                                                      records=10_000)}
    assert tiny["05"]["seconds"] == (work_seconds(work, high), work_seconds(work, low))
    assert 1.5 * 3600 < tiny["05"]["seconds"][0] < tiny["05"]["seconds"][1] < 2.5 * 3600
    assert "처음 설계의 RTX 3070 처리량 4–5 샘플/s" in tiny["05"]["source"]


def test_the_compute_ratio_counts_an_explicit_head_dim():
    """Mi:dm's attention is 32 heads x 128 = 4096 wide on a 1792-wide model: hidden_size / heads (56) would count the
    attention scores at less than half."""
    from course_utils.timing import training_flops_per_token

    seq = 512
    with_attention = training_flops_per_token("midm-2.0-mini", seq) - training_flops_per_token("midm-2.0-mini", 0)
    assert with_attention == 4 * seq * 32 * 128 * 48


def test_a_gpu_check_result_of_this_gpu_replaces_the_seeds_figure(tmp_path):
    g = get_profile("gpu8gb")
    result = {"gpu": "NVIDIA GeForce RTX 3070", "rows": [
        {"model": "midm-2.0-mini", "method": "qlora", "fits": True, "samples_per_s": 6.0}]}
    (tmp_path / "gpu_2026-12-02.json").write_text(json.dumps(result), encoding="utf-8")
    rows = {r["notebook"]: r for r in expected_times(g, tmp_path, RTX_3070, records=10_000)}
    assert rows["05"]["seconds"][0] == rows["05"]["seconds"][1] == work_seconds(training_work(g, 10_000), 6.0)
    assert "이 GPU에서 잰 처리량 6.00 샘플/s (gpu_2026-12-02.json)" in rows["05"]["source"]
    other = {r["notebook"]: r for r in expected_times(g, tmp_path, "GPU NVIDIA A100", records=10_000)}
    assert "처음 설계의 RTX 3070" in other["05"]["source"]  # measured on another card: not this GPU's figure
    _runtime(tmp_path, "gpu8gb", RTX_3070)  # a whole-course run on this card: measured, per notebook
    assert {r["how"] for r in expected_times(g, tmp_path, RTX_3070)} == {"측정"}


def test_a_model_without_a_published_figure_gets_no_made_up_estimate(tmp_path):
    g = dataclasses.replace(get_profile("gpu8gb"), model="qwen2.5-0.5b-instruct")
    assert expected_times(g, tmp_path, RTX_3070, records=100) == []
    # a Llama smaller than TinyLlama: its steps are not compute-bound on a 3070, so TinyLlama's figure is not scaled down
    small = dataclasses.replace(get_profile("gpu8gb"), model="smollm2-135m-instruct")
    assert compute_ratio(small.model, "tinyllama-1.1b", small.seq_len) < 1
    assert expected_times(small, tmp_path, RTX_3070, records=100) == []
    assert describe(None).startswith("예상 시간 없음")


def test_notebook_00_on_gpu8gb_shows_labelled_estimates_for_the_seeds_model(tmp_path):
    """A dry run of notebook 00 with COURSE_PROFILE=gpu8gb on this GPU-less machine: every lesson gets a row; 05 and
    09 get estimates for Mi:dm from the seed's RTX 3070 TinyLlama figure, labelled as such; nothing claims a measurement."""
    import os
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    root = Path(__file__).resolve().parent.parent
    nb = nbformat.read(root / "notebooks" / "00_setup_check.ipynb", as_version=4)
    env = {"COURSE_PROFILE": "gpu8gb", "HF_HUB_OFFLINE": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(root / "notebooks")}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    html = "".join(str(o.get("data", {}).get("text/html", "")) for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    assert "프로필: gpu8gb" in "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    table = html[html.index("예상 시간"):]
    assert table.count("추정: 처음 설계의 RTX 3070에서 같은 구조의 tinyllama-1.1b가 낸 처리량 4–5 샘플/s") == 2  # 05, 09
    assert "1,875 스텝" in table
    assert "측정" not in table.replace("추정", "")  # no measured time is claimed for a GPU nobody measured
    assert all(name in table for name in ("00_setup_check", "05_training", "09_hyperparameters"))
