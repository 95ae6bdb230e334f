"""Command line of the stand-in data generator.

    python -m standin generate --seed 177 --labelled 177 --unlabelled 1000 --out data
    python -m standin generate --seed 177 --only-labelled 1,2 --only-unlabelled 1-3 --out /tmp/subset
    python -m standin generate --seed 1177 --labelled 1000 --unlabelled 0 --no-spectra --out data-reference
"""

from __future__ import annotations

import argparse
import sys

from standin import generate as gen


def core_numbers(text: str) -> list[int]:
    """Parse ``1,2,5-7`` into ``[1, 2, 5, 6, 7]`` (1-based core numbers)."""
    numbers = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            numbers += list(range(int(first), int(last) + 1)) if dash else [int(first)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected core numbers like 1,2,5-7, got {text!r}") from None
    return numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    g = commands.add_parser("generate", help="write the stand-in raw data folder")
    g.add_argument("--seed", type=int, default=gen.DEFAULT_SEED)
    g.add_argument("--labelled", type=int, default=gen.DEFAULT_LABELLED, help="labelled cores (with assays)")
    g.add_argument("--unlabelled", type=int, default=gen.DEFAULT_UNLABELLED, help="unlabelled pool cores")
    g.add_argument("--only-labelled", type=core_numbers, default=None, metavar="LIST",
                   help="write only these labelled cores (1-based, e.g. 1,2,5-7)")
    g.add_argument("--only-unlabelled", type=core_numbers, default=None, metavar="LIST",
                   help="write only these pool cores (1-based)")
    g.add_argument("--out", required=True, help="folder to create (written atomically)")
    g.add_argument("--force", action="store_true", help="replace --out if it exists")
    g.add_argument("--jobs", type=int, default=1, help="worker processes (results do not depend on it)")
    g.add_argument("--no-spectra", action="store_true",
                   help="write truth and assays only, simulate no measurement (reference draws)")
    args = parser.parse_args(argv)

    try:
        out = gen.generate(args.out, seed=args.seed, n_labelled=args.labelled, n_unlabelled=args.unlabelled,
                           labelled_subset=args.only_labelled, unlabelled_subset=args.only_unlabelled,
                           force=args.force, jobs=args.jobs, spectra=not args.no_spectra)
    except (FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
