"""The stand-in data generator: a physical EDXRF instrument (tube, sample, detector) and LCT-pegmatite geology.

Physics (the ground truth): :mod:`.tube` (spekpy Rh tube spectrum, cached),
:mod:`.physics` (xraylib fundamental parameters, thick-sample fluorescence and
scatter), :mod:`.detector` (silicon drift detector response) and
:mod:`.instrument` (``Simulator``: composition and field geometry to spectra).
Geology, lab and writer: :mod:`.minerals`, :mod:`.rocks`, :mod:`.lab`, :mod:`.generate`.
"""
