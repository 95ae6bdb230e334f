"""The README written into the stand-in data folder, rendered from the generator's own parameters.

Rendering the tables from the constants in :mod:`standin.rocks`,
:mod:`standin.minerals`, :mod:`standin.lab` and
:mod:`standin.field` means the stated assumptions cannot drift from
what generated the data.
"""

from __future__ import annotations

from axs.elements import ASSAY_ELEMENTS, assay_unit
from standin import field as gen
from standin import lab
from standin.minerals import MINERALS, TRACE_SIGMA_LN
from standin.rocks import FRACTIONATION_SLOPE, ROCK_TYPES


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.3g}"


def render_data_readme(generated: dict) -> str:
    """Markdown text of ``data/README.md`` for a dataset described by ``generated`` (GENERATED.json)."""
    versions = ", ".join(f"{k} {v}" for k, v in generated["versions"].items())
    rock_rows = [[r.name, _percent(r.proportion),
                  ", ".join(f"{m} {_percent(v)}" for m, v in r.modes.items()),
                  ", ".join(f"{m} {v * 1e6:g}" for m, v in r.accessories.items()),
                  f"{r.mode_concentration:g}", f"{r.grain_count:g}", f"{r.accessory_grain_shape:g}",
                  ", ".join(f"{e} x{f:g}" for e, f in r.enrichment.items()) or "-"]
                 for r in ROCK_TYPES]
    mineral_rows = [[m.name, f"`{m.formula}`", ", ".join(f"{e} {v:g}" for e, v in m.traces_ppm.items())]
                    for m in MINERALS]
    limit_rows = [[e, assay_unit(e), f"{lab.ASSAY_LIMITS[e][0]:g}", f"{lab.ASSAY_LIMITS[e][1]:g}"]
                  for e in ASSAY_ELEMENTS]
    recovery = ", ".join(f"{m} {mean:g} (Beta, concentration {c:g})"
                         for m, (mean, c) in lab.DIGESTION_RECOVERY.items())
    slopes = ", ".join(f"{e} {s:g}" for e, s in FRACTIONATION_SLOPE.items())
    changes = "\n".join(f"- {c['date']}: {c['change']}" for c in generated.get("changes", [])) or "- none"
    contents = "" if generated.get("spectra", True) else (
        "\n**Truth and assays only** (`--no-spectra`): no measurement was simulated, so `spectra/`, "
        "`manifest.csv` and `unlabelled/` are absent; a reference draw, independent of the reported data.\n")
    return f"""# Stand-in raw data (generated, never edited by hand)

Synthetic EDXRF spectra and assays of rock cores from a lithium (spodumene)
pegmatite deposit, standing in for the paper's proprietary data. Written by

```
{generated["command"]}
```

Seed {generated["seed"]}: {generated["labelled_cores"]} labelled cores and {generated["unlabelled_cores"]} unlabelled
pool cores, {generated["orientations"]} orientations each.
Package versions: {versions}.

`GENERATED.json` records the same. Restore the data
with `make data` (`dvc pull`); regenerate it with the command above, or any
subset of cores with `--only-labelled` / `--only-unlabelled`: every core has its
own random streams, so a subset matches the full dataset byte for byte.
{contents}
## Changes to the generator (newest first)

{changes}

## Files

| path | content |
|---|---|
| `spectra/core_NNN_oK.txt` | one spectrum per measurement, orientation K = 1..4, in the plain-text format of `docs/data-format.md` ("Spectrum files"); the header's energy calibration is the instrument's own estimate |
| `assays.csv`, `assay_limits.csv` | the lab's table (format: `docs/data-format.md`, "Assays") |
| `manifest.csv` | one row per labelled spectrum file: `file` (relative to this folder), `sample_id`, `orientation`, `sha256` (hex digest of the file's bytes) |
| `unlabelled/pool_NNN.nc` | unlabelled pool, {gen.POOL_CORES_PER_FILE} cores (`pool_0001` ...) per file, as a *spectra archive*: netCDF-4 with `counts(spectrum, channel)` int32 (zlib), `sample_id`, `orientation`, `live_time_s`, `energy_offset_kev`, `energy_gain_kev` per spectrum |
| `truth/truth.nc` | ground truth, **never an input to a model**; used only for error floors: `bulk_pct(sample, element)` and `surface_pct(sample, orientation, element)` in wt% over every element present (the 48 assay elements and the matrix: O, Si, F, B, ...), `rock_type`, `labelled`, `fractionation`, mineral `modes` and `surface_modes`, and per measurement `distance_cm`, `incidence_deg`, `takeoff_deg`, `dust_g_cm2`, `live_time_s`, the true calibration `gain_kev`/`offset_kev` and the recorded `header_gain_kev`/`header_offset_kev` |
| `GENERATED.json` | command, seed, counts and package versions |

## Geological assumptions

The deposit is a swarm of LCT (lithium-caesium-tantalum) spodumene pegmatite
dykes in amphibolite, after the classic examples (Greenbushes, Kings Mountain,
Tanco; London, *Pegmatites*, 2008; Černý & Ercit, Can. Mineral. 43, 2005).
Each core is one rock type; modes are mass fractions.

{_table(["rock type", "% of cores", "mean modes of rock-forming minerals (%)",
         "median accessory modes (ppm)", "Dirichlet concentration", "grains under the spot",
         "accessory Gamma shape", "metasomatic enrichment"], rock_rows)}

- Modes vary between cores: rock-forming minerals Dirichlet around the means,
  accessories lognormal (sigma_ln {ROCK_TYPES[0].accessory_sigma_ln:g}) around the medians.
- Mineral chemistry varies between cores: each trace content is lognormal
  (sigma_ln {TRACE_SIGMA_LN:g}) around the median below, and a per-core
  fractionation index f ~ N(0, 1) scales incompatible elements together by
  exp(slope * f), slopes: {slopes}. This is what correlates invisible Li and Be
  with visible Rb, Cs, Ta, Sn, Mn, Ga in these rocks.
- Surface vs bulk: the assay measures the bulk; each orientation's XRF spot
  sees its own modes, the rock-forming minerals by grain counting (Dirichlet
  with the "grains under the spot" concentration: coarse pegmatite crystals
  make orientations differ strongly), each accessory scaled by a
  Gamma(shape, 1/shape) factor (nugget effect of sparse grains).

### Minerals (formula via xraylib's CompoundParser; median trace contents in ppm)

{_table(["mineral", "formula", "median traces (ppm)"], mineral_rows)}

## The assay lab

Four-acid (HF-HNO3-HClO4-HCl) digestion, ICP-MS/AES, limits of a commercial
48-element package (ALS ME-MS61). Reported value = dissolved content x
(1 + {lab.RSD:g} N(0,1)) plus {lab.DL_NOISE:g} x DL x N(0,1) absolute noise,
three significant figures, `<DL` / `>UL` outside the limits. Resistate minerals
dissolve only partly (fraction dissolved per core): {recovery}; all other
minerals dissolve completely.

{_table(["element", "unit", "lower limit", "upper limit"], limit_rows)}

## Field measurement

Distance uniform {gen.DISTANCE_RANGE_CM[0]:g}-{gen.DISTANCE_RANGE_CM[1]:g} cm; surface tilt
N(0, {gen.TILT_SD_DEG:g} deg) raising incidence and lowering take-off, plus
N(0, {gen.ANGLE_JITTER_SD_DEG:g} deg) jitter on each; dust film lognormal, median
{gen.DUST_MEDIAN_G_CM2 * 1e3:g} mg/cm2, sigma_ln {gen.DUST_SIGMA_LN:g}; real time
{gen.REAL_TIME_S:g} s with {100 * gen.DEAD_TIME_RANGE[0]:g}-{100 * gen.DEAD_TIME_RANGE[1]:g} % dead
time; calibration drift per core: gain x (1 + N(0, {gen.GAIN_DRIFT_REL_SD:g})), offset +
N(0, {gen.OFFSET_DRIFT_SD_KEV * 1e3:g} eV); the header records the instrument's estimate,
off by N(0, {gen.GAIN_ESTIMATE_REL_SD:g}) in gain and N(0, {gen.OFFSET_ESTIMATE_SD_KEV * 1e3:g} eV)
in offset. The spectra themselves come from the physics simulator
`standin.instrument` (see `lib/standin/README.md`, "The stand-in instrument").
"""
