"""The benchmark scripts run and write what they promise (small settings; the real runs are in README)."""
from __future__ import annotations

import json
import math

import pytest
from conftest import smoke_profiles


def test_gpu_check_dry_mode_runs_every_model_and_method(tmp_path):
    from benchmarks import gpu_check

    out = tmp_path / "gpu.json"
    gpu_check.main(["--dry", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["dry"] is True and result["memory_cap_fraction"] is None
    rows = {(r["model"], r["method"]): r for r in result["rows"]}
    assert set(rows) == {(m, k) for m in gpu_check.CHECKED for k in gpu_check.METHODS}
    for r in rows.values():
        assert r["fits"] and r["samples_per_s"] > 0 and r["estimate_bytes"] > 0
        assert math.isfinite(r["final_loss"])
        assert r["tokens_per_s"] == pytest.approx(r["samples_per_s"] * result["seq_len"])
    # nf4 stores the linear weights in about a quarter of the space: the estimate says so too, for the real Phi-2 (the
    # dry run's tiny Phi-2 is mostly embedding, which QLoRA training keeps in fp32 and LoRA in fp16)
    from course_utils.vram import estimate_vram

    assert estimate_vram("phi-2", "qlora").total < estimate_vram("phi-2", "lora").total


def test_estimator_benchmark_matches_exact_terms(tmp_path):
    from benchmarks import estimator

    out = tmp_path / "est.json"
    # batch 2 only (a batch above 1, where per-record terms must scale): each cell is a fresh process, 10 s here
    estimator.main(["--models", "smollm2-135m-instruct", "--seq", "32", "--batch", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["exact_terms_match"] is True
    assert len(result["rows"]) == 2 * 5 and result["skipped"] == []  # checkpointing x terms
    assert abs(result["worst"]["error_pct"]) < 5


def test_throughput_benchmark_runs_the_four_sides_on_the_same_records(tmp_path):
    from benchmarks import throughput

    out = tmp_path / "tp.json"
    throughput.main(["--profiles", str(smoke_profiles(tmp_path)), "--profile", "smoke", "--records", "4", "--rounds", "1",
                     "--out", str(out)])
    result = json.loads(out.read_text())
    assert [r["side"] for r in result["runs"]] == ["plain", "plain+grouped", "trl", "ours"]
    for r in result["runs"]:
        assert r["records"] == 4 and r["steps"] == 2  # one pass, batch 2
        assert r["answer_tokens"] == result["answer_tokens"] > 0 and r["real_tokens"] > r["answer_tokens"]
        assert 0 < r["share_of_peak"] < 2 and math.isfinite(r["heldout_loss_after"])
    assert result["decision"].startswith(("train with TRL", "keep the course"))


def test_learning_benchmark_scores_both_loops_on_the_same_heldout(tmp_path):
    from benchmarks import learning

    out = tmp_path / "learn.json"
    learning.main(["--profiles", str(smoke_profiles(tmp_path)), "--profile", "smoke", "--plain-seconds", "3",
                   "--out", str(out)])
    result = json.loads(out.read_text())
    plain, ours = result["runs"]
    assert (plain["side"], ours["side"]) == ("plain", "ours")
    assert plain["steps"] >= 1 and ours["steps"] == 4  # the fast smoke profile's max_steps
    # same base model, LoRA init (seeded) and held-out records: the same loss before training
    assert abs(plain["heldout_loss_before"] - ours["heldout_loss_before"]) < 1e-4
    for r in (plain, ours):
        assert r["heldout_loss_after"] != r["heldout_loss_before"]
        assert abs(r["drop"] - (1 - r["heldout_loss_after"] / r["heldout_loss_before"])) < 1e-9


def test_serving_benchmark_counts_every_request_and_compares_every_answer(tmp_path, merged_smollm2):
    from benchmarks import serving

    out = tmp_path / "serving.json"
    serving.main(["--profile", "smoke", "--requests", "4", "--concurrency", "1", "2", "--max-tokens", "8",
                  "--servers", "transformers", "--merged", str(merged_smollm2), "--out", str(out)])
    result = json.loads(out.read_text())
    levels = result["servers"]["transformers"]["levels"]
    assert [r["concurrency"] for r in levels] == [1, 2]
    for r in levels:
        assert r["failed"] == 0 and r["requests"] == 4 and r["requests_per_s"] > 0 and r["p95_s"] >= r["p50_s"] > 0
    agreement = result["servers"]["transformers"]["agreement"]
    assert agreement["answers"] == 8 and agreement["same"] == 8  # the same model and dtype: the same greedy text
    assert result["q8_0_check"]["questions"] == 4 and result["in_process"]["batched_8"]["tokens_per_s"] > 0
    assert result["decision"] == "transformers"  # the only server measured, and it agrees


def test_the_choice_is_the_fastest_server_whose_answers_agree_as_often_as_the_q8_check():
    from benchmarks.serving import choose

    def server(rate, same, failed=0):
        return {"levels": [{"requests_per_s": 1.0, "failed": 0}, {"requests_per_s": rate, "failed": failed}],
                "agreement": {"same": same, "answers": 10}}

    servers = {"fast-but-different": server(4.0, 7), "slow": server(1.0, 10), "good": server(2.0, 9),
               "fails": server(9.0, 10, failed=1)}
    assert choose(servers, bar=0.9) == "good"
    assert choose(servers, bar=0.7) == "fast-but-different"
    assert choose({"x": server(1.0, 5)}, bar=0.9) is None


def test_the_committed_serving_result_chose_the_course_default_server():
    from benchmarks.common import RESULTS
    from course_utils.serve import DEFAULT_ENGINE, DEFAULT_GGUF_TYPE

    newest = sorted(RESULTS.glob("serving_cpu_*.json"))[-1]
    data = json.loads(newest.read_text(encoding="utf-8"))
    assert data["decision"] == f"{DEFAULT_ENGINE}:{DEFAULT_GGUF_TYPE}", newest.name


def test_a_partial_rerun_keeps_the_whole_runs_other_rows_and_says_so():
    from benchmarks.course_runtime import merged_rows

    earlier = {"file": "course_runtime_cpu_2026-12-01.json",
               "rows": [{"notebook": "00_a", "seconds": 1.0}, {"notebook": "05_b", "seconds": 5.0}]}
    rows, extra = merged_rows(earlier, [{"notebook": "10_c", "seconds": 3.0}, {"notebook": "05_b", "seconds": 6.0}])
    assert rows == [{"notebook": "00_a", "seconds": 1.0}, {"notebook": "05_b", "seconds": 6.0},
                    {"notebook": "10_c", "seconds": 3.0}]
    assert extra["whole_run"] == earlier["file"] and extra["rerun"][0]["notebooks"] == ["05_b", "10_c"]
    again, more = merged_rows({"file": "course_runtime_cpu_2026-12-02.json", "rows": rows, **extra},
                              [{"notebook": "00_a", "seconds": 2.0}])
    assert [r["seconds"] for r in again] == [2.0, 6.0, 3.0]
    assert more["whole_run"] == earlier["file"] and [r["notebooks"] for r in more["rerun"]] == [["05_b", "10_c"], ["00_a"]]


def test_gpu_proof_runs_the_courses_stages_on_shaped_random_models(tmp_path):
    """The GPU proof's code paths on this CPU (tiny Mi:dm- and Phi-2-shaped models, smoke's recipe): every stage
    runs, the merged folder is written, DPO's LoRA weights stay fp32, and each row carries the estimate. The real run
    needs a GPU (none was lent to this project so far)."""
    from benchmarks import gpu_proof

    out = tmp_path / "proof.json"
    result = gpu_proof.main(["--dry", "--models", "midm-2.0-mini", "phi-2", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert result["dry"] and [(r["shape_of"], r["stage"]) for r in rows] == [
        (m, s) for m in ("midm-2.0-mini", "phi-2") for s in gpu_proof.STAGES]
    assert all(r["fits"] and r["estimate_bytes"] > 0 and r["cuda"] is False for r in rows), rows
    by = {(r["shape_of"], r["stage"]): r for r in rows}
    for model in ("midm-2.0-mini", "phi-2"):
        assert by[(model, "05 학습")]["steps"] == 4 and by[(model, "06 생성")]["answers"] == 2
        assert by[(model, "07 병합과 저장")]["merged_bytes"] > 0 and by[(model, "09 시도 3개")]["trials"] == 3
        assert by[(model, "10 DPO")]["lora_dtypes"] == ["torch.float32"]


def test_the_notebook_memory_benchmark_reads_the_kernels_peak_above_its_imports(tmp_path):
    import nbformat

    from benchmarks import notebook_memory

    book = tmp_path / "05_probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch\nheld = torch.ones(256 * 1024**2 // 4)  # 256 MiB, kept to the end")]), book)
    m = notebook_memory.measure(book, "smoke")
    assert m["peak"] - m["after_imports"] >= 256 * 1024**2 and m["seconds"] > 0


def test_the_v2_recipe_search_gives_every_candidate_the_same_token_slots_and_chooses_on_dev():
    import random

    from benchmarks.recipe_v2 import TIME_SLACK, choose, dev_losses, slots_per_step

    lengths = [10, 2, 4, 8, 6]
    rows = [{"input_ids": [0] * n} for n in lengths]
    # one shuffled epoch in batches of 2, each batch padded to its longest row
    order = list(range(5))
    random.Random(0).shuffle(order)
    assert order == [2, 1, 0, 4, 3]
    expected = (2 * max(4, 2) + 2 * max(10, 6) + 1 * 8) / 3
    assert slots_per_step(rows, 2, False, 0) == pytest.approx(expected)
    log = [{"step": 5, "loss": 2.0}, {"step": 5, "eval_loss": 1.9}, {"step": 10, "eval_loss": 1.8}]
    assert dev_losses(log) == [(5, 1.9), (10, 1.8)]
    cands = [{"name": "a", "train_seconds": 100.0, "best_dev_loss": 1.80},
             {"name": "b", "train_seconds": 100.0 * TIME_SLACK + 1, "best_dev_loss": 1.50},  # too slow
             {"name": "c", "train_seconds": 120.0, "best_dev_loss": 1.70}]
    assert choose(cands)["name"] == "c"
    assert choose([]) is None


def test_the_evaluation_split_benchmark_runs_05_before_and_now_and_06_on_one_adapter(tmp_path, monkeypatch):
    """Benchmark 11 calls the evaluation functions as 05 and 06 do (a signature change breaks it here, not on a run
    of half an hour) and records each part's time and what 05 and 06 measured."""
    from conftest import tiny_lora

    from benchmarks import evaluation_split
    from course_utils import adapter

    model, tok = tiny_lora()
    adapter_dir = tmp_path / "adapter"
    adapter_dir.mkdir()
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(adapter, "load_trained", lambda folder, key: (model, tok, {"global_step": 2}))
    out = tmp_path / "split.json"
    result = evaluation_split.main(["--profile", "smoke", "--adapter", str(adapter_dir), "--out", str(out)])
    assert json.loads(out.read_text(encoding="utf-8"))["median_seconds"] == result["median_seconds"]
    assert set(result["seconds"]) == {"05 before", "05 now", "06 now"}
    assert all(len(s) == 1 and s[0] > 0 for s in result["seconds"].values())
    assert result["probes"] == 3 and result["paraphrases"] == 9
    assert result["counts"]["adapter"]["probes"].split(" ")[0].endswith("/3")
    assert result["counts"]["plain greedy loops"].split(" ")[0].endswith("/4")  # smoke answers 4 test records


def test_the_measuring_passes_benchmark_times_both_ways_and_they_agree(tmp_path, monkeypatch):
    """Benchmark 12: the union and the gathered held-out loss on the same records, timed in turn; the losses agree
    (the gathered path is only a cheaper way to the same number) and the totals count 05's passes before and after."""
    from conftest import randomize_lora_b, tiny_lora

    from benchmarks import measuring_passes
    from course_utils import adapter, transfer

    model, tok = tiny_lora()
    randomize_lora_b(model, seed=1, std=0.2)
    adapter_dir = tmp_path / "adapter"
    adapter_dir.mkdir()
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(adapter, "load_trained", lambda folder, key: (model, tok, {"global_step": 2}))
    monkeypatch.setattr(transfer, "real_format_file", lambda: None)  # the test records only (../shared may be absent)
    result = measuring_passes.main(["--profile", "smoke", "--adapter", str(adapter_dir), "--repeat", "2",
                                    "--out", str(tmp_path / "passes.json")])
    assert set(result["seconds"]) == {"test union", "test gathered"} and result["records"] == {"test": 4}
    assert all(len(s) == 2 and min(s) > 0 for s in result["seconds"].values())
    assert result["losses"]["test gathered"] == pytest.approx(result["losses"]["test union"], rel=1e-6)
    median = result["median_seconds"]
    assert result["05_measuring_before_seconds"] == pytest.approx(6 * median["test union"])
    assert result["05_measuring_after_seconds"] == pytest.approx(2 * median["test gathered"])


def test_the_page_faults_benchmark_keeps_the_step_and_drops_its_faults(tmp_path):
    """Benchmark 13 on the smoke model: the logits of 4 rows x 63 predicting positions x 49,152 are 47.25 MiB (12,096
    pages), above glibc's largest mmap threshold, so with default settings every step faults them (and the
    log-softmax and gradients of that size) in again. With freed memory kept, a step reuses what the heap holds: here
    the kept side faulted 64,800, 36,723, 2 and 1 times, the default side 48,388-54,583 a step; CI's AVX2 machine still
    faulted 12,097 at the median of steps 2-4 (one logits-sized buffer) against 53,239. The loss and gradients are bit
    for bit the same."""
    from benchmarks import page_faults

    result = page_faults.main(["--model", "smollm2-135m-first-8-layers", "--steps", "6", "--rounds", "1",
                               "--rows", "4", "--seq", "64", "--out", str(tmp_path / "faults.json")])
    assert json.loads((tmp_path / "faults.json").read_text(encoding="utf-8"))["summary"] == result["summary"]
    assert result["same_loss_and_gradients"] is True
    assert all(len(runs) == 1 and len(runs[0]) == 6 for runs in result["runs"].values())
    logits_pages = 4 * 63 * 49_152 * 4 / 4096
    default = [step["minor_faults"] for step in result["runs"]["default"][0][1:]]
    kept = [step["minor_faults"] for step in result["runs"]["keep freed"][0][1:]]
    assert min(default) > logits_pages, default  # at least the logits' pages, every step
    assert min(kept) < min(default) / 3, (kept, default)  # most of a step's faults are gone once the heap has grown
