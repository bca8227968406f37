"""``python -m benchmarks``: see :mod:`benchmarks.runner`."""

import os
import sys

# before numpy/torch are imported, as the ctaflow CLI does (oversubscribed BLAS threads are slow)
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from benchmarks.runner import main

sys.exit(main(sys.argv[1:]))
