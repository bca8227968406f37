"""CHGNet evaluated in float64.

chgnet 0.4 has no precision setting: float32 is written into the package in four places, which
``CHGNet.double()`` (parameters and buffers only) does not reach, so a converted model fails at
its first call with a dtype mismatch:

* ``TORCH_DTYPE`` in ``chgnet.graph.converter``: fractional coordinates, lattice and periodic
  images of every crystal graph;
* ``TORCH_DTYPE`` in ``chgnet.model.model``: the strain identity and the cell volumes (stress);
* ``AtomRef._assemble_graphs`` ends in ``.float()``: the composition features of the elemental
  reference energy;
* torch's default dtype, for tensors created without one (``torch.tensor([2])`` in the angle
  Fourier basis).

:func:`float64_model` converts a loaded model once; :class:`CHGNetFloat64Calculator` runs each
evaluation inside :func:`float64_context`, which sets both module constants and torch's default
dtype to float64 and restores them afterwards, so float32 CHGNet models in the same process are
untouched. The weights themselves are the float32 weights of the checkpoint, held exactly in
float64: float64 changes the arithmetic, not the model.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from chgnet.graph import converter as _converter
from chgnet.model import model as _model
from chgnet.model.composition_model import AtomRef
from chgnet.model.dynamics import CHGNetCalculator

from ctaflow.errors import EngineError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from chgnet.graph import CrystalGraph
    from chgnet.model import CHGNet


class _AtomRefFloat64(AtomRef):
    """AtomRef whose composition features keep float64 (upstream casts them to float32)."""

    def _assemble_graphs(self, graphs: list[CrystalGraph]) -> torch.Tensor:
        features = []
        for graph in graphs:
            counts = torch.bincount(graph.atomic_number - 1, minlength=self.max_num_elements)
            feature = counts.to(torch.float64)
            if self.is_intensive:
                feature = feature / graph.atomic_number.shape[0]
            features.append(feature)
        return torch.stack(features, dim=0)


@contextmanager
def float64_context() -> Iterator[None]:
    """chgnet's hard-coded float32 and torch's default dtype set to float64 for the block."""
    saved = torch.get_default_dtype(), _converter.TORCH_DTYPE, _model.TORCH_DTYPE
    torch.set_default_dtype(torch.float64)
    _converter.TORCH_DTYPE = _model.TORCH_DTYPE = torch.float64
    try:
        yield
    finally:
        torch.set_default_dtype(saved[0])
        _converter.TORCH_DTYPE, _model.TORCH_DTYPE = saved[1], saved[2]


def float64_model(model: CHGNet) -> CHGNet:
    """The loaded model converted in place to float64 (parameters, buffers, composition model)."""
    ref = model.composition_model
    if type(ref) is not AtomRef:
        raise EngineError(
            f"CHGNet in float64 supports the AtomRef composition model, not {type(ref).__name__}; "
            "use dtype: float32"
        )
    ref64 = _AtomRefFloat64(is_intensive=ref.is_intensive, max_num_elements=ref.max_num_elements)
    ref64.load_state_dict(ref.state_dict())
    ref64.fitted = ref.fitted
    model.composition_model = ref64
    return model.double()


class CHGNetFloat64Calculator(CHGNetCalculator):
    """CHGNetCalculator for a model from :func:`float64_model`: every call in float64."""

    def calculate(self, *args, **kwargs) -> None:
        with float64_context():
            super().calculate(*args, **kwargs)
