"""The pipeline's figures: what each panel shows, and PNG bytes that repeat."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xraylib  # noqa: E402

from axs.pipeline import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_strongest_line_is_ka_below_the_range_top_else_la():
    assert plots.strongest_line_kev("Fe", 40.0) == ("Ka", pytest.approx(xraylib.LineEnergy(26, xraylib.KL3_LINE)))
    assert plots.strongest_line_kev("Pb", 40.0) == ("La", pytest.approx(xraylib.LineEnergy(82, xraylib.L3M5_LINE)))
    assert plots.strongest_line_kev("Li", 40.0) is None       # no line above 1 keV


def test_mse_bars_one_panel_per_element_floor_dashed_and_missing_marked():
    table2 = pd.DataFrame({"element": ["Fe"] * 3 + ["Li"] * 3, "model": ["lr", "axs", "floor"] * 2,
                           "mse": [2.0, 1.0, 0.5, np.nan, 3.0, 1.0], "se": [0.1, 0.1, 0.05, np.nan, 0.2, 0.1]})
    fig = plots.mse_bars(table2, ["Fe", "Li"])
    fe, li = fig.axes[:2]
    assert [p.get_height() for p in fe.patches] == [2.0, 1.0]
    assert [line.get_ydata()[0] for line in fe.lines if line.get_linestyle() == "--"] == [0.5]
    assert any(t.get_text() == "n/a" for t in li.texts)


def test_saved_png_bytes_repeat(tmp_path):
    energy = np.linspace(1, 20, 64)
    for name in ("a.png", "b.png"):
        plots.save_figure(plots.reconstruction(energy, np.exp(-energy), np.exp(-energy) * 1.1, "core_001"),
                          tmp_path / name)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
