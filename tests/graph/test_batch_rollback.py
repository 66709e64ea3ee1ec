"""A rejected batch leaves the document exactly as it was, however long the batch and the journal."""

from __future__ import annotations

import itertools

import pytest

from app.graph import EditError
from app.graph.document import JOURNAL_STEPS

from .builders import chain_model, doc_of, snapshot


def renames(count: int, start: int = 0) -> list[dict]:
    """`count` valid edits in a row: the relu node renamed again and again."""
    names = ["relu"] + [f"r{i}" for i in range(start, start + count)]
    return [{"op": "rename_node", "node": a, "to": b} for a, b in itertools.pairwise(names)]


@pytest.mark.parametrize("batch", [1, JOURNAL_STEPS - 1, JOURNAL_STEPS, JOURNAL_STEPS + 1, 300])
def test_rejected_batch_restores_model_version_history_and_journal(tmp_path, batch):
    doc = doc_of(chain_model(), tmp_path)
    doc.apply(renames(3, start=1000))  # earlier steps in the journal and history
    doc.apply([{"op": "rename_node", "node": "r1002", "to": "relu"}])
    doc.undo()
    doc.redo()
    model, version = snapshot(doc), doc.version
    done, undone = list(doc.history.done), list(doc.history.undone)
    steps = doc.steps_since(1)

    with pytest.raises(EditError) as err:
        doc.apply(renames(batch) + [{"op": "rename_node", "node": "no such node", "to": "x"}])
    assert err.value.details["edit_index"] == batch

    assert doc.model == model
    assert doc.version == version
    assert doc.history.done == done and doc.history.undone == undone
    assert doc.steps_since(1) == steps
    # the next accepted edit continues from the same state, and undo walks the same history back
    doc.apply([{"op": "rename_node", "node": "relu", "to": "after"}])
    assert doc.version == version + 1
    doc.undo()
    assert doc.model == model
    for _ in range(len(done)):
        doc.undo()
    assert doc.model == chain_model()
