"""Known third-party messages that say nothing about a result, kept out of the log and terminal.

* scipy's ``logm result may be inaccurate, approximate err = 2.8e-13`` (RuntimeWarning): ASE's
  ``FrechetCellFilter`` takes the matrix logarithm of the deformation gradient at every step of
  a cell relaxation; scipy warns whenever its error estimate exceeds 1000 machine epsilons
  (2.2e-13), which a deformation gradient near the identity reaches by round-off. A demo run
  wrote it 518 times (1,554 of its 1,949 log lines, with the source lines the warnings module
  adds), all with errors between 2.2e-13 and 3.4e-13. The filter matches only errors below
  1e-10: a genuinely inaccurate logarithm is still reported.
* CHGNet's banners ("CHGNet v0.3.0 initialized with 412,525 parameters", "CHGNet will run on
  cpu"), printed with ``print`` when a model or calculator is made: see :func:`captured_stdout`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

#: scipy.linalg.logm's accuracy warning with an error estimate below 1e-10 (round-off)
LOGM_ROUND_OFF = r"logm result may be inaccurate, approximate err = [0-9.]+e-(1\d|[2-9]\d|\d{3})$"


def quiet_known_noise() -> None:
    """Install the warnings filters of this module in this process (the CLI calls it when it
    sets up logging, each worker process when it starts)."""
    warnings.filterwarnings("ignore", message=LOGM_ROUND_OFF, category=RuntimeWarning)


@contextlib.contextmanager
def captured_stdout(logger: logging.Logger) -> Iterator[None]:
    """Run a block whose library prints to stdout (e.g. CHGNet's banners): what it prints goes
    to ``logger`` at DEBUG instead of the terminal beside ctaflow's own output."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    for line in buffer.getvalue().splitlines():
        if line.strip():
            logger.debug("%s", line)
