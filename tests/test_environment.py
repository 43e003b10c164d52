import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ]", req, maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    """Runtime dependencies and the `test` extra, with the same pins, in both files."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["test"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    pinned = {_name(p): p for p in pip if not p.startswith("-e")}
    assert set(pinned) == {_name(d) for d in deps}
    for d in deps:
        if "==" in d:
            assert pinned[_name(d)] == d, f"{d} differs in environment.yml: {pinned[_name(d)]}"


def test_test_tools_are_not_runtime_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_name(d) for d in project["dependencies"]}
    assert {"pytest", "nbval", "playwright", "ruff"} <= {_name(d) for d in project["optional-dependencies"]["test"]}
    assert not runtime & {"pytest", "nbval", "playwright", "ruff"}
