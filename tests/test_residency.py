"""One big model at a time (issue 41): what every notebook holds, measured in the notebooks' own run.

``make test`` runs every notebook under nbval on the smoke profile with ``COURSE_RESIDENCY_LOG`` set: ``notebook.setup``
then records, after each cell and after each model load, the models alive (``residency.record_residency``, after
``gc.collect()``). This test reads those records, counts the full-size models alive at each point, and scales the bytes
to the gpu8gb recipe (Mi:dm 2.0 Mini: a 4-bit model as QLoRA training holds it, a plain one in 16 bits), adding the
estimator's other training terms (LoRA, gradients, optimizer, activations, logits, the CUDA context). It fails when a
notebook of the training path holds two full-size models at once, or when the peak would not fit 8 GiB, and in every
notebook when a cell ends with a weight file still mapped and resident while no model is alive (a tensor of a freed
model kept its whole file in memory).
It runs after the notebooks (``course.AFTER_NOTEBOOKS``); alone, without the records, it is skipped.
"""
import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from course_utils.models import count_params, meta_model
from course_utils.profiles import get_profile
from course_utils.units import GIB
from course_utils.vram import estimate_vram

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
# the training path, and its solutions: one full-size model at a time (05-10, and the merge and export of 07-08)
ONE_AT_A_TIME = ("05", "06", "07", "08", "09", "10")


def cell_owner() -> dict[str, str]:
    """sha1 of a code cell's source -> the notebook it belongs to (lessons and solutions); cells several notebooks
    share (the setup cell) name none."""
    owners: dict[str, set[str]] = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")) + sorted((NOTEBOOKS / "solutions").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                key = hashlib.sha1("".join(cell["source"]).encode("utf-8")).hexdigest()
                owners.setdefault(key, set()).add(path.stem)
    return {key: names.pop() for key, names in owners.items() if len(names) == 1}


def on_card(model: dict) -> bool:
    """Whether a recorded model would be on the card on a GPU machine: all but the copies the code keeps on the CPU
    beside it (``residency.cpu_side``: weights to compare with)."""
    return not model.get("cpu_side", False)


def scaled_bytes(model: dict, stand_in_values: int) -> float:
    """A live model's bytes scaled to gpu8gb's model: packed 4-bit as QLoRA training holds it (nf4 linear layers,
    fp32 rest), otherwise every value in 16 bits (gpu8gb's bf16, or fp16), in proportion to the values it holds."""
    recipe = get_profile("gpu8gb")
    est = estimate_vram(recipe.model, "qlora", recipe.seq_len, recipe.batch_size, recipe.lora.r)
    full = count_params(meta_model(recipe.model)).total
    share = model["values"] / stand_in_values
    if model["packed"]:
        return share * (est.terms["weights_linear"] + est.terms["quant_constants"] + est.terms["weights_other"])
    return share * full * 2


def residency(folder: Path) -> dict[str, dict]:
    """Per notebook: the most full-size models on the card at once, where, and the peak scaled to gpu8gb (bytes)."""
    smoke = get_profile("smoke")
    values = count_params(meta_model(smoke.model)).total
    owner = cell_owner()
    found = {}
    for log in sorted(folder.glob("*.jsonl")):
        events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
        names = {owner[e["cell"]] for e in events if e["cell"] in owner}
        assert len(names) == 1, f"{log.name}: cells of {sorted(names) or 'no known notebook'}"
        name = names.pop()
        row = {"full": 0, "where": "", "peak": 0.0, "orphaned": []}
        for e in events:
            mapped = {path: n for path, n in e.get("mapped", {}).items() if n}
            if e["event"] == "cell" and not e["models"] and mapped:  # weights outliving every model
                row["orphaned"].append(f"cell {e['cell'] and e['cell'][:8]}: "
                                       + ", ".join(f"{Path(p).name} {n / 2**20:.1f} MiB" for p, n in mapped.items()))
            card = [m for m in e["models"] if on_card(m)]
            full = sum(m["values"] >= 0.5 * values for m in card)
            peak = sum(scaled_bytes(m, values) for m in card)
            if full > row["full"]:
                row.update(full=full, where=f"{e['event']} in cell {e['cell'] and e['cell'][:8]}: "
                           + ", ".join(f"{m['model']} ({m['values'] / values:.2f} of the model)" for m in e["models"]))
            row["peak"] = max(row["peak"], peak)
        found[name] = row
    return found


def test_the_notebooks_hold_one_full_size_model_at_a_time_and_fit_8_gib():
    folder = os.environ.get("COURSE_RESIDENCY_LOG")
    if not folder:
        pytest.skip("runs after the notebooks in make test (COURSE_RESIDENCY_LOG names their records)")
    found = residency(Path(folder))
    expected = {p.stem for p in NOTEBOOKS.glob("*.ipynb")} | {p.stem for p in (NOTEBOOKS / "solutions").glob("*.ipynb")}
    assert set(found) == expected, f"no records for {sorted(expected - set(found))}"
    recipe = get_profile("gpu8gb")
    est = estimate_vram(recipe.model, "qlora", recipe.seq_len, recipe.batch_size, recipe.lora.r,
                        gradient_checkpointing=recipe.gradient_checkpointing, optimizer=recipe.optimizer)
    training = sum(est.terms[k] for k in ("lora_weights", "gradients", "optimizer", "activations", "logits",
                                          "cuda_context"))
    print(f"\nLive models per notebook (smoke, scaled to gpu8gb's {recipe.model}; + {training / GIB:.2f} GiB of "
          f"training terms and CUDA context from the estimator):")
    print(f"{'notebook':<16} {'full-size models at once':>24} {'peak models GiB':>16} {'+ training GiB':>15} {'left of 8 GiB':>14}")
    too_many, too_big = [], []
    for name in sorted(found):
        row = found[name]
        total = row["peak"] + training
        print(f"{name:<16} {row['full']:>24} {row['peak'] / GIB:>16.2f} {total / GIB:>15.2f} {(8 * GIB - total) / GIB:>14.2f}")
        if name[:2] in ONE_AT_A_TIME and row["full"] > 1:
            too_many.append(f"{name}: {row['full']} at once, {row['where']}")
        if name[:2] in ONE_AT_A_TIME and total > 8 * GIB:
            too_big.append(f"{name}: {total / GIB:.2f} GiB")
    orphaned = [f"{name}: {where}" for name in sorted(found) for where in found[name]["orphaned"]]
    assert not orphaned, ("a weight file still mapped and resident after its model was freed (a tensor of it outlived "
                          "`del model`: residency.mapped_weight_files):\n" + "\n".join(orphaned))
    assert not too_many, "two full-size models where one would do:\n" + "\n".join(too_many)
    assert not too_big, "over an 8 GiB card:\n" + "\n".join(too_big)


def _log(folder: Path, notebook: str, events: list[list[dict]], mapped: dict | None = None, event: str = "load"):
    """A record as ``residency.record_residency`` writes it, for ``notebook``'s first code cell."""
    owner = cell_owner()
    cells = [hashlib.sha1("".join(c["source"]).encode("utf-8")).hexdigest()
             for c in json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code"]
    cell = next(c for c in cells if owner.get(c) == notebook)
    folder.mkdir(exist_ok=True)
    (folder / f"{notebook}.jsonl").write_text("".join(json.dumps({"cell": cell, "event": event, "models": models,
                                                                  "mapped": mapped or {}})
                                                      + "\n" for models in events), encoding="utf-8")


def test_the_check_counts_full_size_models_and_scales_them_to_gpu8gb(tmp_path):
    values = count_params(meta_model(get_profile("smoke").model)).total
    nf4 = {"model": "LlamaForCausalLM", "values": values, "bytes": 1, "packed": True}
    plain = {"model": "LlamaForCausalLM", "values": values, "bytes": 1, "packed": False}
    lora = {"model": "PeftModel", "values": values // 1000, "bytes": 1, "packed": False}
    cpu_copy = {**plain, "cpu_side": True}
    _log(tmp_path, "07_merging", [[nf4, lora], [plain], [nf4, plain], [nf4, cpu_copy]])
    row = residency(tmp_path)["07_merging"]
    assert row["full"] == 2 and "load in cell" in row["where"]
    midm = count_params(meta_model("midm-2.0-mini")).total
    assert get_profile("gpu8gb").model == "midm-2.0-mini"
    assert row["peak"] == pytest.approx(scaled_bytes(nf4, values) + 2 * midm)
    assert 1.8 * GIB < scaled_bytes(nf4, values) < 1.95 * GIB  # Mi:dm's nf4 linears + fp32 rest, as QLoRA trains


def test_a_snapshot_counts_what_is_held_once_and_not_what_only_a_cycle_keeps():
    import gc

    from conftest import tiny_model

    from course_utils.lora import attach_lora
    from course_utils.profiles import LoraSettings
    from course_utils.residency import residency_snapshot

    def held():  # the model lives only inside this call, then only in a reference cycle
        model = attach_lora(tiny_model("tinyllama-1.1b"), LoraSettings(8, 16, 0.0, "attention"))
        model.cycle = model
        return residency_snapshot(), sum(t.numel() for t in [*model.parameters(), *model.buffers()])

    held()  # once first: under pytest, the first call's imports keep its frame (and the model) alive
    gc.collect()
    before = len(residency_snapshot())
    snapshot, values = held()
    assert len(snapshot) == before + 1  # the peft wrapper and its base: one model
    assert snapshot[-1]["values"] == values
    assert len(residency_snapshot()) == before


def test_only_a_model_on_the_cpu_can_be_kept_beside_the_card():
    from conftest import tiny_model

    from course_utils.residency import cpu_side

    model = tiny_model("tinyllama-1.1b")
    assert cpu_side(model)._course_cpu_side
    with pytest.raises(ValueError, match="cpu_side: this model is on meta, not on the CPU"):
        cpu_side(model.to("meta"))


def test_a_freed_models_file_is_found_while_one_of_its_tensors_lives(tmp_path):
    """The class of bug of lesson 10 (d545876..c0357b3): ``for param in model.parameters()`` left the last weight in
    the notebook's namespace; after ``del model`` no model was alive, yet the whole safetensors file stayed mapped and
    resident (Gemma: 1.0 GiB more at the next training's peak)."""
    import gc
    import sys

    from conftest import tiny_model
    from transformers import AutoModelForCausalLM

    from course_utils.residency import live_models, mapped_weight_files

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/smaps (Linux)")
    tiny_model("tinyllama-1.1b").save_pretrained(tmp_path / "model")
    file = str((tmp_path / "model" / "model.safetensors").resolve())
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3]]))  # reads every weight: the mapping becomes resident
    assert mapped_weight_files().get(file, 0) > 0
    for param in model.parameters():  # noqa: B007 - the lesson's loop, whose variable outlives it
        pass
    del model
    gc.collect()
    assert not any(m for m in live_models() if m.name_or_path == str(tmp_path / "model"))
    assert mapped_weight_files().get(file, 0) > 0  # one weight keeps the file
    del param
    gc.collect()
    assert file not in mapped_weight_files()
    # the check reads it from the records: a cell that ends with no model and a resident weight file
    _log(tmp_path / "records", "10_preference_tuning", [[]], mapped={file: 4096}, event="cell")
    assert residency(tmp_path / "records")["10_preference_tuning"]["orphaned"] == ["cell " + json.loads(
        (tmp_path / "records" / "10_preference_tuning.jsonl").read_text())["cell"][:8] + ": model.safetensors 0.0 MiB"]


def test_the_kernels_record_freezes_what_is_alive_only_when_no_model_is(tmp_path, monkeypatch):
    """After a cell that leaves no model alive, ``record_residency`` moves what is alive out of the collector's sight
    (``gc.freeze``: each later snapshot's scan then walks only what later cells make); never while a model holding
    weights is alive, which a frozen model would hide from every later snapshot. Models made after a freeze are still found: the
    snapshot tests above run after conftest's own freeze."""
    import gc
    from types import SimpleNamespace

    import IPython
    from conftest import tiny_model
    from transformers import AutoModelForCausalLM

    from course_utils import residency

    hooks, freezes = {}, []
    shell = SimpleNamespace(events=SimpleNamespace(register=lambda name, f: hooks.__setitem__(name, f)))
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", AutoModelForCausalLM.from_pretrained)  # restored
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(len(residency.residency_snapshot())))
    every = residency.live_models  # only this test's models: other tests' fixtures may hold theirs
    monkeypatch.setattr(residency, "live_models", lambda: [m for m in every() if getattr(m, "_this_test", False)])
    residency.record_residency(tmp_path)

    def cell(source):
        hooks["pre_run_cell"](SimpleNamespace(raw_cell=source))
        hooks["post_run_cell"](None)

    cell("import torch")
    model = tiny_model("tinyllama-1.1b")
    model._this_test = True
    cell("model = ...")
    del model
    cell("del model")
    lines = [json.loads(line) for line in next(tmp_path.glob("*.jsonl")).read_text(encoding="utf-8").splitlines()]
    assert [len(line["models"]) for line in lines] == [0, 1, 0]
    assert freezes == [0, 0]  # after the first and the last cell, with nothing alive
