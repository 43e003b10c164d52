"""Course profiles (smoke / demo / cpu / gpu8gb): which model and recipe a run uses. Profiles are data
(``profiles.yaml`` beside this file); ``active_profile()`` picks ``COURSE_PROFILE``, else gpu8gb with CUDA, else cpu.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from .data import ON_INVALID, ON_LONG
from .models import MODELS
from .prompts import TEMPLATES
from .variants import VARIANTS, variant_problem

PROFILES_FILE = Path(__file__).with_name("profiles.yaml")
CHOICES = {"device": ("cpu", "cuda"), "dtype": ("float32", "float16", "bfloat16"), "quantization": ("none", "int8", "nf4"),
           "optimizer": ("adamw_torch", "adamw_8bit", "paged_adamw_8bit"), "targets": ("attention", "all-linear"), "variant": tuple(VARIANTS)}

OPTIONAL = ("stands_in_for", "swaps")  # top-level keys a profile may leave out


class ProfileError(ValueError):
    """A profile name, key or value is wrong; the message lists the valid choices."""


@dataclass(frozen=True)
class LoraSettings:
    r: int
    alpha: int
    dropout: float
    targets: str  # "attention" or "all-linear"
    variant: str = "lora"  # rslora, dora, pissa, olora, loftq: course_utils.variants


@dataclass(frozen=True)
class DataSettings:
    source: str  # "bundled", a .json/.jsonl path, or a hub dataset id
    max_records: int | None  # use only the first N training records (None: all)
    on_long: str  # records longer than seq_len: "drop" or "truncate"
    on_invalid: str  # a record with an empty or non-string field, or a duplicate: "skip" (and count) or "error"
    template: str  # "koalpaca" or "chat"


@dataclass(frozen=True)
class TrainSettings:
    max_steps: int | None  # optimizer steps; exactly one of max_steps and epochs is set
    epochs: float | None  # passes over the training records (the seed's recipe: 3)
    learning_rate: float
    warmup_steps: int
    lr_scheduler: str  # transformers scheduler name: cosine, linear, constant_with_warmup
    save_steps: int  # checkpoint every N optimizer steps (a multiple of eval_steps: the best one is kept)
    eval_steps: int  # dev loss every N optimizer steps (the checkpoint kept is chosen on it)
    logging_steps: int
    heldout_records: int  # records in each of dev (choices) and test (the reported before/after loss)
    generate_records: int  # of the test records, the N answered by generation in 05/06 (chrF, EOS, loops)
    answer_tokens: int  # new tokens at most in such a generated answer
    eval_batch_size: int
    probe_questions: int  # probe questions asked before/after training
    neftune_noise_alpha: float | None  # NEFTune embedding noise (None: off)
    seed: int
    report_to: tuple[str, ...]  # where training logs: tensorboard (in the run folder), wandb (WANDB_MODE=offline works)
    packing: bool  # several whole records per row of up to seq_len tokens, none seeing another (course_utils.packing)
    general_texts: int | None  # general paragraphs per language for the forgetting measure, 05/09 (None: all)
    bench_items: int | None  # items per task of the bundled lm-eval benchmark, 06 (None: all)
    transfer_records: int  # real-format KoAlpaca records whose answer loss 05 scores (course_utils.transfer)
    transfer_answers: int  # of those, the N answered by generation (chrF, EOS)


@dataclass(frozen=True)
class TuningSettings:
    """Notebook 09's hyperparameter search: short trials, pruned by their held-out loss."""

    trials: int  # Optuna trials
    steps: int  # optimizer steps per trial (and per comparison run)
    eval_steps: int  # dev loss every N steps of a trial (what the pruner reads)
    heldout_records: int  # dev records a trial is scored on (the comparison reports on the profile's test set)
    generate_records: int  # records answered to compare 06's metrics (chrF, EOS, loops): 06 dev, 09 test


@dataclass(frozen=True)
class PreferenceSettings:
    """Notebook 10 and ``python -m course_utils.preference``: DPO/ORPO on the SFT adapter (batch: the profile's)."""

    beta: float  # DPO: how far from the reference the policy may move; ORPO: the weight of its odds-ratio term
    learning_rate: float
    max_length: int  # prompt + answer tokens of a pair
    steps: int  # optimizer steps
    own_records: int  # training records answered by the SFT adapter to find its own mistakes (pairs)
    generate_records: int  # test records answered by SFT / DPO / ORPO for 06's metrics
    test_pairs: int  # test pairs the three are scored on, taken across the kinds (the bundled file has 25)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    model: str
    device: str
    dtype: str
    quantization: str
    seq_len: int  # tokens per training example
    batch_size: int  # examples per forward pass
    grad_accum: int  # forward passes per optimizer step
    gradient_checkpointing: bool
    optimizer: str
    measure_seq_lens: tuple[int, ...]  # notebook 01: activation measurement lengths (tokens)
    eval_sentences: int  # notebook 02: sentences per language
    lora: LoraSettings
    data: DataSettings
    train: TrainSettings
    tuning: TuningSettings
    preference: PreferenceSettings
    # a stand-in profile (smoke: gpu8gb's recipe on a CPU) names the profile it imitates and, for every setting it
    # changed, why: ((dotted setting, reason), ...). Complete by test: every differing setting has a reason.
    stands_in_for: str | None = None
    swaps: tuple[tuple[str, str], ...] = ()

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


RENAMED = {"heldout_pairs": "test_pairs"}  # old key -> new key (a best_profile.yaml written by an earlier 09)
# keys newer than an older profiles file (an earlier 09's YAML, a learner's --profiles): cpu's values (tested equal)
ADDED = {"train": {"transfer_records": 100, "transfer_answers": 12}}


def _check_keys(found: dict, allowed: list[str], where: str, optional: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(found) - set(allowed) - set(optional))
    missing = sorted(set(allowed) - set(found))
    if unknown:
        renamed = "".join(f" '{k}' is now '{RENAMED[k]}' (이름이 바뀌었습니다: 파일에서 '{k}'를 '{RENAMED[k]}'로 고치세요)."
                          for k in unknown if k in RENAMED)
        raise ProfileError(f"{where}: unknown key(s) {unknown}.{renamed} Valid keys: {', '.join([*allowed, *optional])}")
    if missing:
        raise ProfileError(f"{where}: missing key(s) {missing}. Valid keys: {', '.join(allowed)}")


def parse_profile(name: str, raw: dict, source: str = str(PROFILES_FILE)) -> Profile:
    """Validate one profile's raw mapping and turn it into a ``Profile``."""
    where = f"profile {name!r} in {source}"
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
    top = [f.name for f in fields(Profile) if f.name not in ("name", *OPTIONAL)]
    _check_keys(raw, top, where, OPTIONAL)
    stands_in_for, swaps = raw.get("stands_in_for"), raw.get("swaps") or {}
    if not isinstance(swaps, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                              for k, v in swaps.items()):
        raise ProfileError(f"{where}: swaps must map a setting (e.g. optimizer, train.epochs) to the reason it differs "
                           f"from the profile in stands_in_for, got {swaps!r}")
    if swaps and not stands_in_for:
        raise ProfileError(f"{where}: swaps are listed but stands_in_for does not name the profile they differ from")
    for section, cls in (("lora", LoraSettings), ("data", DataSettings), ("train", TrainSettings),
                         ("tuning", TuningSettings), ("preference", PreferenceSettings)):
        names = [f.name for f in fields(cls)]
        if not isinstance(raw[section], dict):
            raise ProfileError(f"{where}: '{section}' must be a mapping with keys {', '.join(names)}")
        if source != str(PROFILES_FILE):
            raw = {**raw, section: {**ADDED.get(section, {}), **raw[section]}}
        _check_keys(raw[section], names, f"{where}, section '{section}'")
    lora_raw = raw["lora"]
    if raw["model"] not in MODELS:
        raise ProfileError(f"{where}: model {raw['model']!r} is not in the registry. Valid models: {', '.join(MODELS)}")
    for key, valid in CHOICES.items():
        value = lora_raw[key] if key in ("targets", "variant") else raw[key]
        if value not in valid:
            raise ProfileError(f"{where}: {key}={value!r} is not valid. Choose one of: {', '.join(valid)}")
    for key in ("seq_len", "batch_size", "grad_accum", "eval_sentences"):
        if not isinstance(raw[key], int) or raw[key] < 1:
            raise ProfileError(f"{where}: {key} must be a whole number >= 1, got {raw[key]!r}")
    limit = MODELS[raw["model"]].max_positions
    if raw["seq_len"] > limit:
        raise ProfileError(f"{where}: seq_len={raw['seq_len']} is above {raw['model']}'s maximum of {limit} positions. "
                           f"Set seq_len to {limit} or less")
    if not isinstance(lora_raw["r"], int) or lora_raw["r"] < 1:
        raise ProfileError(f"{where}: lora.r must be a whole number >= 1 (the adapter rank), got {lora_raw['r']!r}")
    if not 0.0 <= float(lora_raw["dropout"]) < 1.0:
        raise ProfileError(f"{where}: lora.dropout must be in [0, 1), got {lora_raw['dropout']!r}")
    if problem := variant_problem(lora_raw["variant"], raw["quantization"]):
        raise ProfileError(f"{where}: {problem}")
    d, t = raw["data"], raw["train"]
    for key, valid in (("on_long", ON_LONG), ("on_invalid", ON_INVALID), ("template", TEMPLATES)):
        if d[key] not in valid:
            raise ProfileError(f"{where}: data.{key}={d[key]!r} is not valid. Choose one of: {', '.join(valid)}")
    for key, value in (("data.max_records", d["max_records"]), ("train.general_texts", t["general_texts"]),
                       ("train.bench_items", t["bench_items"])):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ProfileError(f"{where}: {key} must be null (all) or a whole number >= 1, got {value!r}")
    if (t["max_steps"] is None) == (t["epochs"] is None):
        raise ProfileError(f"{where}: set exactly one of train.max_steps (optimizer steps) and train.epochs (passes "
                           f"over the data); the other is null. Got max_steps={t['max_steps']!r}, epochs={t['epochs']!r}")
    if t["epochs"] is not None and (isinstance(t["epochs"], bool) or not isinstance(t["epochs"], (int, float))
                                    or t["epochs"] <= 0):
        raise ProfileError(f"{where}: train.epochs must be a number > 0 (e.g. 3), got {t['epochs']!r}")
    for key in ("max_steps", "save_steps", "eval_steps", "logging_steps", "heldout_records", "generate_records",
                "answer_tokens", "eval_batch_size", "probe_questions", "transfer_records", "transfer_answers"):
        if key == "max_steps" and t[key] is None:
            continue
        if not isinstance(t[key], int) or t[key] < 1:
            raise ProfileError(f"{where}: train.{key} must be a whole number >= 1, got {t[key]!r}")
    if t["save_steps"] % t["eval_steps"]:
        raise ProfileError(f"{where}: train.save_steps ({t['save_steps']}) must be a multiple of train.eval_steps "
                           f"({t['eval_steps']}): the best checkpoint is chosen by its held-out loss")
    if not isinstance(t["packing"], bool):
        raise ProfileError(f"{where}: train.packing must be true or false, got {t['packing']!r}")
    if not isinstance(t["report_to"], list) or set(t["report_to"]) - {"tensorboard", "wandb"}:
        raise ProfileError(f"{where}: train.report_to must be a list of tensorboard and/or wandb, got {t['report_to']!r}")
    if not 0 < float(t["learning_rate"]) < 1:
        raise ProfileError(f"{where}: train.learning_rate must be between 0 and 1, got {t['learning_rate']!r}")
    for key, value in [*(("tuning." + k, v) for k, v in raw["tuning"].items()),
                       *(("preference." + k, v) for k, v in raw["preference"].items())]:
        if key in ("preference.beta", "preference.learning_rate"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 10:
                raise ProfileError(f"{where}: {key} must be a number > 0 (e.g. 0.1), got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ProfileError(f"{where}: {key} must be a whole number >= 1, got {value!r}")
    lora = LoraSettings(r=int(lora_raw["r"]), alpha=int(lora_raw["alpha"]), dropout=float(lora_raw["dropout"]),
                        targets=lora_raw["targets"], variant=lora_raw["variant"])
    data = DataSettings(source=str(d["source"]), max_records=d["max_records"], on_long=d["on_long"],
                        on_invalid=d["on_invalid"], template=d["template"])
    train = TrainSettings(**{**t, "learning_rate": float(t["learning_rate"]), "report_to": tuple(t["report_to"]),
                             "epochs": None if t["epochs"] is None else float(t["epochs"])})
    values = {k: raw[k] for k in top if k not in ("lora", "data", "train", "tuning", "preference")}
    values["measure_seq_lens"] = tuple(int(x) for x in raw["measure_seq_lens"])
    values["gradient_checkpointing"] = bool(raw["gradient_checkpointing"])
    preference = PreferenceSettings(**{**raw["preference"], "beta": float(raw["preference"]["beta"]),
                                       "learning_rate": float(raw["preference"]["learning_rate"])})
    return Profile(name=name, lora=lora, data=data, train=train, tuning=TuningSettings(**raw["tuning"]),
                   preference=preference, stands_in_for=stands_in_for, swaps=tuple(swaps.items()), **values)


def to_raw(profile: Profile) -> dict:
    """The profile as the mapping ``profiles.yaml`` holds (``parse_profile`` reads it back to an equal profile)."""
    from dataclasses import asdict

    raw = {k: v for k, v in asdict(profile).items() if k not in ("name", *OPTIONAL)}
    raw["measure_seq_lens"] = list(profile.measure_seq_lens)
    raw["train"]["report_to"] = list(profile.train.report_to)
    if profile.stands_in_for:
        raw["stands_in_for"], raw["swaps"] = profile.stands_in_for, dict(profile.swaps)
    return raw


def settings(profile: Profile) -> dict:
    """Every setting of a profile by dotted name (``optimizer``, ``train.epochs``), without its name and notes."""
    flat = {}
    for key, value in to_raw(profile).items():
        if key in ("description", *OPTIONAL):
            continue
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def write_profiles(profiles: dict[str, Profile], path: str | Path, comment: str = "") -> Path:
    """Write profiles as a YAML file that ``--profiles`` accepts (validated by reading it back)."""
    from .files import write_text

    text = (f"# {comment}\n" if comment else "") + yaml.safe_dump({n: to_raw(p) for n, p in profiles.items()},
                                                               allow_unicode=True, sort_keys=False)
    write_text(path, text)
    load_profiles(path)
    return Path(path)


def load_profiles(path: str | Path = PROFILES_FILE) -> dict[str, Profile]:
    """All profiles in a YAML file, validated."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: expected a mapping of profile names to settings")
    return {name: parse_profile(name, body, str(path)) for name, body in raw.items()}


def get_profile(name: str, path: str | Path = PROFILES_FILE) -> Profile:
    """One profile by name; an unknown name lists the valid ones."""
    profiles = load_profiles(path)
    if name not in profiles:
        raise ProfileError(f"Unknown profile {name!r}. Valid profiles: {', '.join(profiles)}")
    return profiles[name]


def default_profile_name() -> str:
    """``COURSE_PROFILE`` if set, else ``gpu8gb`` with CUDA, else ``cpu``."""
    chosen = os.environ.get("COURSE_PROFILE", "").strip()
    if chosen:
        return chosen
    import torch

    return "gpu8gb" if torch.cuda.is_available() else "cpu"


def active_profile() -> Profile:
    """The profile this run uses (see ``default_profile_name``)."""
    return get_profile(default_profile_name())
