"""The setup every notebook runs first: Korean plots without missing glyphs."""
import warnings


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
