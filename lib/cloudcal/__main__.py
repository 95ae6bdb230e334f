"""``python -m cloudcal SOURCE_DIR --out data-real``: see :mod:`cloudcal`."""

import sys

from cloudcal import main

sys.exit(main())
