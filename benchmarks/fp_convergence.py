"""Does the direct fit converge? (``fp``, :mod:`axs.fp`; docs/models.md, "The direct fit", "Convergence").

Not part of ``make bench``: it reads the pipeline's outputs (run ``make repro`` first) and takes 1-3 minutes on
2 cores. With the ``fp`` model's characterised instrument held, it fits every ``--every``-th measurement of the
prepared dataset with ``fit_steps`` (or ``--steps``), twice and four times as many steps, the elements that the
instrument does not see tied as in the model's fits (``tie_below``; ``--tie-below 0`` leaves them free), and prints

* the deviance per channel after each budget (a converged fit stops moving it);
* how far the focus elements' amounts move from one budget to the next (median and SD of the change of
  log-amount), and how strongly those changes go together across spectra (a common scale);
* each element's share of the matrix weight and how far it moves: the elements the fit cannot pin down;
* how high the decoder's unit response to each light element peaks against Fe's (which lines it can see).

    python benchmarks/fp_convergence.py [--dataset standin] [--every 7] [--steps 300] [--tie-below 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

FOCUS = ("K", "Ca", "Ti", "Mn", "Fe", "Rb", "Sr", "Zr")
LIGHT = ("Na", "Mg", "Al", "Si", "P", "S")


def main(argv=None) -> None:
    from keras import ops

    from axs.dataset import load_dataset, single_spectra
    from axs.fp import basis_spectra, fit_spectra, fit_window, unseen_elements
    from axs.predict import load_predictor

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="standin")
    parser.add_argument("--every", type=int, default=7, help="fit every n-th measurement (default 7: about 100)")
    parser.add_argument("--steps", type=int, default=None, help="the first budget (default: the model's fit_steps)")
    parser.add_argument("--tie-below", type=float, default=None,
                        help="tie the elements whose unit response peaks below this fraction of the strongest's "
                             "(default: the model's tie_below; 0: none)")
    args = parser.parse_args(argv)
    artifacts = Path("artifacts") / args.dataset
    model = load_predictor(artifacts / "train" / "fp" / "model")
    spectra, _ = single_spectra(load_dataset(artifacts / "prepare" / "dataset.nc"))
    rows = model._checked(spectra[::args.every])
    layer = model.layer()
    names = list(layer.element_names)
    steps = model.options["fit_steps"] if args.steps is None else args.steps
    tied = unseen_elements(layer, model.options["tie_below"] if args.tie_below is None else args.tie_below)
    print(f"{args.dataset}: {len(rows)} measurements, fp's instrument held, {steps}, {2 * steps}, {4 * steps} steps, "
          f"tied: {', '.join(np.asarray(names)[tied]) or 'none'}")

    fits = {}
    window = fit_window(layer, model.options["fit_low_kev"])
    fitted_channels = rows.shape[1] if window is None else int(window.sum())
    for budget in (steps, 2 * steps, 4 * steps):
        start = time.perf_counter()
        fits[budget] = fit_spectra(layer, rows, steps=budget, learning_rate=model.options["fit_learning_rate"],
                                    tied=tied, window=window)
        print(f"  {budget:5d} steps: deviance per channel {fits[budget].deviance.mean() / fitted_channels:.5f} "
              f"({time.perf_counter() - start:.0f} s)")

    focus = [names.index(e) for e in FOCUS if e in names]
    for a, b in ((steps, 2 * steps), (2 * steps, 4 * steps)):
        change = np.log(fits[b].theta / fits[a].theta)
        print(f"  change of log-amount, {a} -> {b} steps (median of |change|, SD):")
        print("    " + "  ".join(f"{names[i]} {np.median(np.abs(change[:, i])):.4f} {change[:, i].std():.4f}"
                                  for i in focus))
    change = np.log(fits[2 * steps].theta / fits[steps].theta)[:, focus]
    together = np.corrcoef(change.T)[np.triu_indices(len(focus), 1)]
    print(f"  correlation across spectra of the focus elements' changes ({steps} -> {2 * steps}): "
          f"median {np.median(together):.2f}, range {together.min():.2f} to {together.max():.2f}")

    mass = np.ravel(np.asarray(ops.softplus(layer.mass_scale_raw)))
    weight = fits[steps].theta * mass
    share = np.median(weight / weight.sum(axis=1, keepdims=True), axis=0)
    drift = np.log(fits[2 * steps].theta / fits[steps].theta).std(axis=0)
    print("  largest shares of the matrix weight (median) and the SD of their log change:")
    for i in np.argsort(-share)[:10]:
        print(f"    {names[i]:2s} {share[i]:.4f}  {drift[i]:.3f}")

    basis = basis_spectra(layer)
    fe = basis[names.index("Fe")].max()
    print("  unit-response peak over Fe's: " + "  ".join(f"{e} {basis[names.index(e)].max() / fe:.1e}"
                                                          for e in LIGHT if e in names))


if __name__ == "__main__":
    main()
