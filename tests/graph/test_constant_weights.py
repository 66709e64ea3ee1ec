"""Weights held in Constant nodes (every Paddle export) are first-class: found by the same lookup as
initializers, and moved into initializers by one undoable edit that leaves the outputs unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from app.graph import EditError, load_model
from app.graph.weights import weight_tensor

from .builders import feeds_for, run, snapshot


def test_constants_to_initializers_on_ppocrv4_det(fixture_model):
    doc = load_model(fixture_model("ppocrv4_det"))
    before = snapshot(doc)
    conv_weight = doc.main.find_node("p2o.Conv.0").input[1]
    assert not doc.model.graph.initializer and weight_tensor(doc.main, conv_weight).dims == [16, 3, 3, 3]
    doc.apply([{"op": "constants_to_initializers", "min_elements": 2}])
    names = {t.name for t in doc.model.graph.initializer}
    assert conv_weight in names and len(names) == 135  # 342 Constant nodes, 207 of them scalars
    assert weight_tensor(doc.main, conv_weight) is doc.main.initializer(conv_weight)
    assert all(n.op_type != "Constant" or np.prod(n.attribute[0].t.dims) < 2 for n in doc.model.graph.node)
    feeds = feeds_for(
        before, sizes={"p2o.DynamicDimension.0": 1, "p2o.DynamicDimension.1": 64, "p2o.DynamicDimension.2": 64}
    )
    for name, value in run(before, feeds).items():
        np.testing.assert_array_equal(run(doc.model, feeds)[name], value)
    doc.undo()
    assert doc.model == before
    with pytest.raises(EditError, match="no Constant node holds a tensor"):
        doc.apply([{"op": "constants_to_initializers", "min_elements": 1 << 40}])
