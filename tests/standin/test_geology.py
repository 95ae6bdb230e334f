"""Stand-in geology and assay lab: mineral chemistry against xraylib, compositions, censoring, digestion."""

import numpy as np
import pytest
import xraylib
from numpy.testing import assert_allclose

from axs.assays import ABOVE, BELOW, read_assays
from axs.elements import ASSAY_ELEMENTS, assay_unit, atomic_number
from standin import lab
from standin.minerals import (MINERALS, Z_MAX, draw_mineral_mass_fractions, formula_mass_fractions,
                                  mineral_index, stoichiometric_mass_fractions)
from standin.rocks import ROCK_TYPE_NAMES, ROCK_TYPES, draw_core


@pytest.fixture(scope="module")
def cores():
    return [draw_core(np.random.default_rng([7, k])) for k in range(400)]


def test_formula_mass_fractions_match_hand_stoichiometry():
    # Spodumene LiAlSi2O6 from atomic weights (xraylib.AtomicWeight, IUPAC values), computed by hand.
    weights = {z: xraylib.AtomicWeight(z) for z in (3, 8, 13, 14)}
    molar = weights[3] + weights[13] + 2 * weights[14] + 6 * weights[8]
    w = formula_mass_fractions("LiAlSi2O6")
    assert_allclose(w[[2, 12, 13, 7]], [weights[3] / molar, weights[13] / molar,
                                        2 * weights[14] / molar, 6 * weights[8] / molar], rtol=1e-6)
    # Textbook Li2O content of pure spodumene: 8.03 wt% (Deer, Howie & Zussman).
    li2o = w[2] * (2 * weights[3] + weights[8]) / (2 * weights[3])
    assert li2o == pytest.approx(0.0803, abs=5e-4)


def test_every_formula_parses_and_sums_to_one():
    stoich = stoichiometric_mass_fractions()
    assert stoich.shape == (len(MINERALS), Z_MAX)
    assert_allclose(stoich.sum(axis=1), 1.0, rtol=1e-9)


def test_traces_dilute_the_formula_and_keep_unit_sum():
    w = draw_mineral_mass_fractions(np.random.default_rng(0))
    assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(w >= 0)
    zircon = w[mineral_index("zircon")]
    assert 0.005 < zircon[atomic_number("Hf") - 1] < 0.1    # Hf substitutes Zr at the % level


def test_enrichment_shift_scales_traces():
    shift = np.zeros(Z_MAX)
    shift[atomic_number("Cs") - 1] = np.log(10.0)
    base = draw_mineral_mass_fractions(np.random.default_rng(3))
    rich = draw_mineral_mass_fractions(np.random.default_rng(3), shift)
    k, z = mineral_index("microcline"), atomic_number("Cs") - 1
    assert rich[k, z] / base[k, z] == pytest.approx(10.0, rel=1e-2)


def test_every_assay_element_is_present_in_every_rock_type(cores):
    bulk = np.array([c.bulk_mass_fractions for c in cores])
    rock = np.array([c.rock_type for c in cores])
    assert set(rock) == set(ROCK_TYPE_NAMES)
    for name in ROCK_TYPE_NAMES:
        present = bulk[rock == name][:, [atomic_number(e) - 1 for e in ASSAY_ELEMENTS]]
        assert np.all(present > 0), f"{name} lacks some assay element"


def test_bulk_and_surface_compositions_are_normalised_and_differ(cores):
    for c in cores[:50]:
        assert_allclose(c.bulk_mass_fractions.sum(), 1.0, rtol=1e-9)
        assert_allclose(c.surface_mass_fractions.sum(axis=1), 1.0, rtol=1e-9)
        assert_allclose(c.modes.sum(), 1.0, rtol=1e-9)
    # Orientations differ from the bulk; coarse pegmatite more than fine albitite (grain counting).
    def spread(name):
        z = atomic_number("K") - 1
        ratios = [np.log(c.surface_mass_fractions[:, z] / c.bulk_mass_fractions[z])
                  for c in cores if c.rock_type == name]
        return np.std(ratios)
    assert spread("spodumene_pegmatite") > 2 * spread("albitite") > 0


def test_rock_types_behave_like_the_geology(cores):
    def median(name, element):
        z = atomic_number(element) - 1
        return np.median([c.bulk_mass_fractions[z] for c in cores if c.rock_type == name])
    # Ore grade: spodumene pegmatite near 0.5-1 wt% Li (1-2 % Li2O), barren pegmatite far below.
    assert 0.003 < median("spodumene_pegmatite", "Li") < 0.012
    assert median("barren_pegmatite", "Li") < 0.3 * median("spodumene_pegmatite", "Li")
    # Amphibolite is the Fe-Mg-Ca rock, pegmatite the K-Rb rock.
    assert median("amphibolite", "Fe") > 0.05 and median("spodumene_pegmatite", "Fe") < 0.01
    assert median("spodumene_pegmatite", "Rb") > 10 * median("amphibolite", "Rb")
    # Mass balance of the rock types' proportions.
    assert sum(r.proportion for r in ROCK_TYPES) == pytest.approx(1.0)


def test_same_stream_same_core_other_stream_differs():
    a, b = draw_core(np.random.default_rng([1, 5])), draw_core(np.random.default_rng([1, 5]))
    assert_allclose(a.surface_mass_fractions, b.surface_mass_fractions, rtol=0, atol=0)
    c = draw_core(np.random.default_rng([2, 5]))
    assert not np.allclose(a.bulk_mass_fractions, c.bulk_mass_fractions)


def test_digestion_recovers_silicates_fully_and_resistates_partly(cores):
    rng = np.random.default_rng(11)
    recovery = np.array([lab.draw_digestion_recovery(rng) for _ in range(500)])
    for name, (mean, _) in lab.DIGESTION_RECOVERY.items():
        assert recovery[:, mineral_index(name)].mean() == pytest.approx(mean, abs=0.05)
    assert np.all(recovery[:, mineral_index("spodumene")] == 1.0)
    core = next(c for c in cores if c.rock_type == "spodumene_pegmatite")
    r = np.ones(len(MINERALS))
    r[mineral_index("zircon")] = 0.0
    z = [atomic_number("Hf") - 1, atomic_number("Li") - 1]
    lost = 1 - lab.dissolved_mass_fractions(core, r)[z] / core.bulk_mass_fractions[z]
    assert lost[0] > 0.5      # Hf sits almost only in zircon
    assert lost[1] == pytest.approx(0.0, abs=1e-12)


def test_assay_noise_is_a_few_percent_above_the_detection_limit(cores):
    core = cores[0]
    truth = core.bulk_mass_fractions[atomic_number("Al") - 1] * 100
    results = np.array([lab.draw_assay(core, np.random.default_rng([9, k])) for k in range(300)])
    al = results[:, ASSAY_ELEMENTS.index("Al")]
    assert np.std(al) / np.mean(al) == pytest.approx(lab.RSD, rel=0.2)
    assert np.mean(al) == pytest.approx(truth, rel=0.01)


def test_written_assays_read_back_with_censoring(cores, tmp_path):
    values = np.array([lab.draw_assay(c, np.random.default_rng([4, k])) for k, c in enumerate(cores)])
    ids = [f"core_{k + 1:03d}" for k in range(len(cores))]
    lab.write_assays(tmp_path / "assays.csv", ids, values)
    lab.write_assay_limits(tmp_path / "assay_limits.csv")
    assays = read_assays(tmp_path / "assays.csv", tmp_path / "assay_limits.csv")
    assert list(assays.values_pct.columns) == list(ASSAY_ELEMENTS)
    assert list(assays.values_pct.index) == ids
    li = ASSAY_ELEMENTS.index("Li")
    assert (assays.censored["Li"] == ABOVE).sum() == (values[:, li] > 10000).sum() > 0
    assert (assays.censored["Se"] == BELOW).sum() > 0
    measured = assays.censored == 0
    scale = np.array([1.0 if assay_unit(e) == "pct" else 1e-4 for e in ASSAY_ELEMENTS])
    reported = assays.values_pct.to_numpy()[measured.to_numpy()]
    expected = (values * scale)[measured.to_numpy()]
    assert_allclose(reported, expected, rtol=5e-3)   # three significant figures
    for element in ASSAY_ELEMENTS:
        lower, upper = lab.ASSAY_LIMITS[element]
        assert assays.lower_pct[element] == pytest.approx(lower * (1 if assay_unit(element) == "pct" else 1e-4))


def test_invisible_light_elements_correlate_with_visible_ones(cores):
    # In LCT pegmatites Li and Be rise with Rb, Cs and Mn (fractionation drives both the Li-mineral
    # modes and the trace contents); that geology, not a shortcut, is what lets a model infer
    # elements without XRF lines. Checked within one rock type, so it is not just rock-type contrast.
    ore = [c for c in cores if c.rock_type == "spodumene_pegmatite"]
    log = {e: np.log([c.bulk_mass_fractions[atomic_number(e) - 1] for c in ore])
           for e in ("Li", "Be", "Rb", "Cs", "Mn")}
    for light, visible in (("Li", "Cs"), ("Li", "Rb"), ("Li", "Mn"), ("Be", "Cs")):
        assert np.corrcoef(log[light], log[visible])[0, 1] > 0.25, (light, visible)
