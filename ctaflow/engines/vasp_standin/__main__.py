"""``python -m ctaflow.engines.vasp_standin``: see :mod:`ctaflow.engines.vasp_standin.cli`."""

import sys

from ctaflow.engines.vasp_standin.cli import main

sys.exit(main())
