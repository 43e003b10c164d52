"""No drift between what a lesson writes and what the package runs.

The library calls the lessons teach are taken from the lesson cells themselves (notebooks/*.py, parsed with ast)
and evaluated for every profile, then compared field by field with the objects the command line builds:
05's ``TrainingArguments(...)`` with ``trainer.training_arguments``, 03's ``LoraConfig(...)`` with
``lora.lora_config``, 02's ``BitsAndBytesConfig(...)`` with ``quantization.quantization_config``, the decoding
arguments of 06's ``model.generate(...)`` with ``inference.DEFAULT_DECODING``, and 10's ``DPOConfig``/``ORPOConfig``
recipe with ``preference.preference_config``.
"""
import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from course_utils.profiles import get_profile

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PROFILES = ["smoke", "demo", "cpu", "gpu8gb"]


def lesson_call(notebook: str, callee: str, first: bool = False) -> ast.Call:
    """The one call of ``callee`` (a name or ``obj.attr``) that the lesson's code writes; ``first``: the first of
    several (03 writes LoraConfig in full once, then once per variant with ``**common``)."""
    tree = ast.parse((NOTEBOOKS / notebook).read_text(encoding="utf-8"))
    found = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and ast.unparse(node.func) == callee]
    assert len(found) == 1 or (first and found), f"{notebook} should write {callee}(...) once, found {len(found)}"
    return min(found, key=lambda node: node.lineno)


def evaluate(call: ast.Call, namespace: dict):
    """Run the lesson's call expression in ``namespace`` (the names its cell has defined by then)."""
    return eval(compile(ast.Expression(call), "<lesson>", "eval"), namespace)  # noqa: S307 (our own notebooks)


@pytest.mark.parametrize("name", PROFILES)
def test_training_arguments_of_lesson_05_are_the_clis(name, tmp_path):
    from transformers import TrainingArguments

    from course_utils.trainer import argument_differences, training_arguments, with_profile

    profile = get_profile(name)
    namespace = {"TrainingArguments": TrainingArguments, "profile": profile, "t": profile.train, "torch": torch,
                 "cuda": profile.device == "cuda" and torch.cuda.is_available(),
                 "run": SimpleNamespace(checkpoint_dir=tmp_path)}
    recipe = evaluate(lesson_call("05_training.py", "TrainingArguments"), namespace)  # the recipe's literals
    lesson = with_profile(recipe, profile)  # then the cell's next line
    assert argument_differences(lesson, training_arguments(profile, tmp_path)) == {}
    assert (name == "gpu8gb") == (lesson is recipe)  # the recipe is gpu8gb's: only the others change values
    assert (lesson.per_device_train_batch_size, lesson.gradient_accumulation_steps) == (profile.batch_size,
                                                                                       profile.grad_accum)


def test_the_comparison_sees_one_changed_field(tmp_path):
    from course_utils.trainer import argument_differences, training_arguments

    cpu = get_profile("cpu")
    args = training_arguments(cpu, tmp_path)
    changed = training_arguments(cpu, tmp_path)
    changed.warmup_steps += 1
    assert argument_differences(args, changed) == {"warmup_steps": (args.warmup_steps, args.warmup_steps + 1)}


@pytest.mark.parametrize("name", PROFILES)
def test_lora_config_of_lesson_03_is_the_clis(name):
    from peft import LoraConfig

    from course_utils.lora import discover_targets, lora_config, needs_fan_in_fan_out
    from course_utils.models import meta_model

    profile = get_profile(name)
    base = meta_model(profile.model)
    namespace = {"LoraConfig": LoraConfig, "profile": profile, "needs_fan_in_fan_out": needs_fan_in_fan_out,
                 "base": base, "targets": discover_targets(base, profile.lora.targets)}
    lesson = evaluate(lesson_call("03_lora_config.py", "LoraConfig", first=True), namespace)
    assert lesson.to_dict() == lora_config(profile.lora, base).to_dict()
    assert (lesson.r, lesson.lora_alpha) == (profile.lora.r, profile.lora.alpha)


def test_quantization_config_of_lesson_02_is_the_packages_nf4():
    from transformers import BitsAndBytesConfig

    from course_utils.quantization import quantization_config

    lesson = evaluate(lesson_call("02_quantization.py", "BitsAndBytesConfig"),
                      {"BitsAndBytesConfig": BitsAndBytesConfig, "torch": torch})
    package = quantization_config("nf4", torch.float32)  # 02 computes in fp32 on every profile
    assert lesson.to_dict() == package.to_dict()
    gpu = quantization_config("nf4", get_profile("gpu8gb").torch_dtype).to_dict()
    assert {k: v for k, v in gpu.items() if k != "bnb_4bit_compute_dtype"} == \
        {k: v for k, v in package.to_dict().items() if k != "bnb_4bit_compute_dtype"}  # only the compute dtype differs


def test_decoding_of_lesson_06_is_the_course_default():
    import inspect

    from course_utils.inference import DEFAULT_DECODING, generate_answer

    call = lesson_call("06_inference.py", "model.generate")
    literals = {k.arg: ast.literal_eval(k.value) for k in call.keywords if isinstance(k.value, ast.Constant)}
    assert {k: literals[k] for k in DEFAULT_DECODING} == DEFAULT_DECODING
    assert literals["max_new_tokens"] == inspect.signature(generate_answer).parameters["max_new_tokens"].default


def test_lesson_06_asks_lm_eval_what_the_package_asks():
    """06's ``lm_eval.simple_evaluate(...)`` and ``kobench.samples`` pass the same keywords with the same values
    (the model and the limit are the caller's)."""
    package = Path(__file__).resolve().parent.parent / "course_utils" / "kobench.py"
    calls = [node for node in ast.walk(ast.parse(package.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and ast.unparse(node.func) == "lm_eval.simple_evaluate"]
    assert len(calls) == 1

    def keywords(call, skip=("model", "tasks", "limit")):
        return {k.arg: ast.unparse(k.value) for k in call.keywords if k.arg not in skip}

    lesson = lesson_call("06_inference.py", "lm_eval.simple_evaluate")
    assert keywords(lesson) == keywords(calls[0])
    assert ast.unparse(next(k.value for k in lesson.keywords if k.arg == "limit")) == "profile.train.bench_items"


@pytest.mark.parametrize("name", PROFILES)
def test_dpo_and_orpo_configs_of_lesson_10_are_the_commands(name, tmp_path):
    """Lesson 10 writes its DPO/ORPO recipe as ``recipe = dict(...)`` and passes it to ``DPOConfig`` and ``ORPOConfig``:
    for every profile, the same arguments as ``python -m course_utils.preference`` builds."""
    from trl import DPOConfig
    from trl.experimental.orpo import ORPOConfig

    from course_utils.preference import preference_config
    from course_utils.trainer import argument_differences

    tree = ast.parse((NOTEBOOKS / "10_preference_tuning.py").read_text(encoding="utf-8"))
    assign = next(node for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and [ast.unparse(t) for t in node.targets] == ["recipe"])
    profile = get_profile(name)
    cuda = profile.device == "cuda" and torch.cuda.is_available()
    recipe = evaluate(assign.value, {"dict": dict, "min": min, "max": max, "profile": profile,
                                     "pref": profile.preference, "cuda": cuda})
    for method, config in (("dpo", DPOConfig), ("orpo", ORPOConfig)):
        lesson = config(output_dir=str(tmp_path / method / "checkpoints"), **recipe)
        assert argument_differences(lesson, preference_config(profile, method, tmp_path / method)) == {}, method
