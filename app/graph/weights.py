"""Where a weight's values live: an initializer, or the Constant node that produces the tensor.

Exporters such as Paddle2ONNX keep every weight in a Constant node; the editor, the REST routes and
the quantization analysis treat both the same way through this lookup.
"""
from __future__ import annotations

import numpy as np
from onnx import AttributeProto, NodeProto, TensorProto, helper, numpy_helper

from .document import Scope
from .folding import is_constant_node


def constant_tensor(node: NodeProto) -> TensorProto | None:
    """A Constant node's value as a tensor (its `value`, or a value_float(s)/value_int(s) made one)."""
    for attr in node.attribute:
        if attr.name == "value" and attr.type == AttributeProto.TENSOR:
            return attr.t
        if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
            value = helper.get_attribute_value(attr)
            return numpy_helper.from_array(np.array(value, np.int64 if "int" in attr.name else np.float32))
    return None


def weight_tensor(scope: Scope, name: str) -> TensorProto | None:
    """The tensor holding the values of `name`: its initializer, else its Constant node's value."""
    tensor = scope.initializer(name)
    if tensor is not None:
        return tensor
    producer = scope.index.producer.get(name)
    if producer is not None and is_constant_node(producer):
        return constant_tensor(producer)
    return None
