"""The field campaign's settings: dataset size and layout, and how each measurement's geometry varies.

Read by :mod:`standin.generate` (which draws from them) and
:mod:`standin.datacard` (which states them in ``data/README.md``).
"""

DEFAULT_SEED = 177
DEFAULT_LABELLED = 177
DEFAULT_UNLABELLED = 1000
N_ORIENTATIONS = 4
#: Pool cores per archive file; keeps each netCDF file well under 5 MB.
POOL_CORES_PER_FILE = 250
LABELLED, POOL = 0, 1
NETCDF_ENGINE = "netcdf4"

#: Field-variability parameters (module docstring).
DISTANCE_RANGE_CM = (8.0, 14.0)
TILT_SD_DEG = 4.0
ANGLE_JITTER_SD_DEG = 1.0
DUST_MEDIAN_G_CM2 = 3e-4
DUST_SIGMA_LN = 1.0
REAL_TIME_S = 30.0
DEAD_TIME_RANGE = (0.01, 0.04)
GAIN_DRIFT_REL_SD = 1.5e-4
OFFSET_DRIFT_SD_KEV = 0.003
GAIN_ESTIMATE_REL_SD = 5e-5
OFFSET_ESTIMATE_SD_KEV = 0.001
