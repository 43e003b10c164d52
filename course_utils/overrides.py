"""Changing a profile's settings from the command line (``--model``, ``--set section.key=value``, the seed's flags),
each change validated exactly as a profiles YAML is, before anything runs."""
from __future__ import annotations

from pathlib import Path

import yaml

from .models import MODELS
from .profiles import PROFILES_FILE, Profile, ProfileError, get_profile, parse_profile, settings, to_raw


def with_model(profile: Profile, key: str) -> Profile:
    """``profile`` with another registry model (the training CLI's ``--model``, as the seed's ``--model_name``)."""
    import dataclasses

    if key not in MODELS:
        raise ProfileError(f"--model {key!r} is not in the registry. Valid models: {', '.join(MODELS)}")
    limit = MODELS[key].max_positions
    if profile.seq_len > limit:
        raise ProfileError(f"--model {key}: profile {profile.name!r} uses seq_len={profile.seq_len}, above {key}'s "
                           f"maximum of {limit} positions. Choose a profile with seq_len <= {limit}")
    return dataclasses.replace(profile, model=key)


def parse_setting(text: str) -> tuple[str, object]:
    """``section.key=value`` (the command line's ``--set``) as (dotted key, YAML value: numbers, null, true...)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ProfileError(f"--set {text!r}: write it as key=value, e.g. --set train.learning_rate=1e-4 or "
                           f"--set gradient_checkpointing=true")
    parsed = yaml.safe_load(value) if value.strip() else ""
    return key.strip(), parsed


def with_overrides(profile: Profile, overrides: list[tuple[str, object]], where: str = "the command line") -> Profile:
    """``profile`` with settings changed by dotted name (``batch_size``, ``train.epochs``), validated exactly as a
    profiles YAML is (``parse_profile``): a bad value stops with the same one-line error, before anything runs."""
    raw = to_raw(profile)
    for key, value in overrides:
        section, _, name = key.rpartition(".")
        holder = raw.get(section) if section else raw
        prefix = f"{section or name}."  # a section's own keys ("lora" alone: lora.r, lora.alpha, ...)
        valid = sorted(k for k in settings(profile) if k.startswith(prefix)) or sorted(settings(profile))
        if not isinstance(holder, dict) or name not in holder or (not section and isinstance(holder[name], dict)):
            raise ProfileError(f"profile {profile.name!r} in {where}: unknown setting {key!r}. Valid settings: "
                               f"{', '.join(valid)}")
        holder[name] = value
    shown = ", ".join(f"{k}={v}" for k, v in overrides)
    return parse_profile(profile.name, raw, f"{where} ({shown})")


def differences(profile: Profile, other: Profile) -> list[tuple[str, object, object]]:
    """(dotted setting, value in ``other``, value in ``profile``) for every setting where the two differ."""
    mine, theirs = settings(profile), settings(other)
    return [(k, theirs[k], mine[k]) for k in mine if mine[k] != theirs[k]]


def swaps_table(profile: Profile, path: str | Path = PROFILES_FILE):
    """For a stand-in profile: one row per setting it changed from the profile it stands in for, with the reason (its
    ``swaps``), every text whole (``.data`` is the DataFrame). Notebook 00 shows it; a test keeps it complete."""
    import pandas as pd

    other = get_profile(profile.stands_in_for, path)
    reasons = dict(profile.swaps)
    table = pd.DataFrame([{"설정": key, other.name: "null" if theirs is None else str(theirs),
                           profile.name: "null" if mine is None else str(mine),
                           "바꾼 이유": reasons.get(key, "(이유가 적혀 있지 않음)")}
                          for key, theirs, mine in differences(profile, other)]).set_index("설정")
    return table.style.set_properties(**{"text-align": "left", "white-space": "pre-wrap"})
