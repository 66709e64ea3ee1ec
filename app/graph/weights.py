"""Where a weight's values live: an initializer, or the Constant node that produces the tensor.

Exporters such as Paddle2ONNX keep every weight in a Constant node; edits, weight reads and the
quantization analysis treat both the same way through this lookup.
"""

from __future__ import annotations

from onnx import TensorProto

from .document import Scope
from .folding import constant_tensor, is_constant_node


def weight_tensor(scope: Scope, name: str) -> TensorProto | None:
    """The tensor holding the values of `name`: its initializer, else its Constant node's value."""
    tensor = scope.initializer(name)
    if tensor is not None:
        return tensor
    producer = scope.index.producer.get(name)
    if producer is not None and is_constant_node(producer):
        return constant_tensor(producer)
    return None
