"""The operators a model may use: those of its opsets, with inputs and typed attributes (the editor's
"add node" dialog)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import onnx

from ..session_store import SessionStore


def operators(store: SessionStore, session_id: str) -> dict[str, Any]:
    """The opsets of the session's model and the operators they hold."""
    with store.open(session_id) as handle:
        opsets = {o.domain or "": o.version for o in handle.doc.model.opset_import}
    return {"opsets": opsets, "operators": _operator_list(tuple(sorted(opsets.items())))}


@lru_cache(maxsize=32)
def _operator_list(opset_items: tuple[tuple[str, int], ...]) -> list[dict[str, Any]]:
    """The operators of these opsets, newest schema of each: the same for every model with these opsets."""
    opsets = dict(opset_items)
    found: dict[tuple[str, str], Any] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        domain = "" if schema.domain == "ai.onnx" else schema.domain
        version = opsets.get(domain)
        if version is None or schema.since_version > version or schema.deprecated:
            continue
        key = (domain, schema.name)
        if key not in found or found[key].since_version < schema.since_version:
            found[key] = schema
    ops = []
    for (domain, name), schema in sorted(found.items(), key=lambda kv: (kv[0][0] != "", kv[0])):
        ops.append(
            {
                "op_type": name,
                "domain": domain,
                "since_version": schema.since_version,
                "inputs": [
                    {
                        "name": i.name,
                        "optional": i.option == onnx.defs.OpSchema.FormalParameterOption.Optional,
                        "variadic": i.option == onnx.defs.OpSchema.FormalParameterOption.Variadic,
                    }
                    for i in schema.inputs
                ],
                "outputs": [{"name": o.name} for o in schema.outputs],
                "min_output": schema.min_output,
                "attributes": [
                    {
                        "name": a.name,
                        "type": onnx.AttributeProto.AttributeType.Name(int(a.type)).lower(),
                        "required": a.required,
                    }
                    for a in schema.attributes.values()
                ],
            }
        )
    return ops
