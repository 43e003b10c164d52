"""Make it when missing: the adapter 05 trains and the merged model 07 saves, for the lessons and commands that
come later (06-09) and may run first. This layer sits above training, merging and export; none of them imports it."""
from __future__ import annotations

from pathlib import Path

from .adapter import ADAPTER_METADATA
from .merge import MERGED_METADATA, merge_adapter
from .runs import last_complete_checkpoint
from .train import train


def ensure_adapter(profile, output_dir, progress=print) -> Path:
    """The adapter folder under ``output_dir``; trains the profile's adapter first when it is missing.

    06 and 07 can run without 05 having been run first.
    """
    adapter = Path(output_dir) / "adapter"
    if (adapter / ADAPTER_METADATA).exists():
        return adapter
    progress(f"{adapter}에 어댑터가 없습니다: {profile.name} 프로필의 어댑터를 지금 학습합니다 "
             f"(05 노트북, python -m course_utils.train --profile {profile.name} --output {output_dir}와 같음)")
    # an interrupted run that left a complete checkpoint is continued; otherwise a fresh run, and what an earlier
    # one left there (an unfinished checkpoint folder) is moved to <output>.previous-<time>, not deleted
    resume = last_complete_checkpoint(Path(output_dir) / "checkpoints") is not None
    train(profile, output_dir, resume=resume, if_exists="overwrite", progress=progress)
    return adapter


def ensure_merged(profile, merged_dir, adapter_parent, progress=print) -> Path:
    """The merged model folder notebook 07 saves; made from 05's adapter (trained first if missing) when absent,
    by the course's merge (``merge.merge_adapter``: a QLoRA adapter goes into its de-quantized nf4 weights)."""
    merged_dir = Path(merged_dir)
    if all((merged_dir / f).exists() for f in ("config.json", "chat_template.jinja", MERGED_METADATA)):
        return merged_dir
    progress(f"{merged_dir}에 병합 모델이 없습니다: {adapter_parent}의 어댑터를 지금 병합합니다 (07과 같은 방법)")
    merge_adapter(ensure_adapter(profile, adapter_parent, progress), merged_dir, progress=progress)
    return merged_dir
