import re
import tomllib
import warnings
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ]", req, maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    pinned = {_name(p): p for p in pip if not p.startswith("-e")}
    assert set(pinned) == {_name(d) for d in deps}
    for d in deps:
        if "==" in d:
            assert pinned[_name(d)] == d, f"{d} differs in environment.yml: {pinned[_name(d)]}"


def test_korean_plot_has_no_missing_glyphs(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_utils.notebook import korean_plots

    korean_plots()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig, ax = plt.subplots()
        ax.set_title("시퀀스 길이에 비례해 늘어나는 활성화 메모리")
        ax.set_xlabel("시퀀스 길이 (토큰)")
        fig.savefig(tmp_path / "plot.png")
        plt.close(fig)
    assert [str(w.message) for w in caught if "Glyph" in str(w.message)] == []
