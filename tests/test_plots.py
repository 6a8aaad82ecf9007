"""Figures: what a reader would otherwise see wrong."""

import arviz as az
import matplotlib.pyplot as plt
import numpy as np

from bayesnmr._plots import _tidy_marginals


def test_marginal_titles_are_one_line_and_clear_the_panel_above():
    rng = np.random.default_rng(0)
    post = {
        "offsets_hz": rng.normal(size=(2, 100, 4)) + np.array([-40, -10, 20, 45]),
        "j_hz": rng.normal(12.5, 0.01, (2, 100)),
    }
    az.plot_dist(az.from_dict({"posterior": post}), backend="matplotlib")
    fig = plt.gcf()
    _tidy_marginals(fig, {"offsets_hz": [-40, -10, 20, 45], "j_hz": 12.5})
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [f"offsets_hz[{i}]" for i in range(4)] + ["j_hz"]
    # Every panel got its true value as a reference line.
    assert all(ax.lines for ax in fig.axes if ax.get_title())
    # No title overlaps the tick labels of the panel above it.
    renderer = fig.canvas.get_renderer()
    upper = fig.axes[0]
    lower = next(ax for ax in fig.axes if ax.get_title() == "j_hz")
    title_box = lower.title.get_window_extent(renderer)
    ticks_box = upper.get_tightbbox(renderer)
    assert title_box.y1 < ticks_box.y0
    plt.close(fig)
