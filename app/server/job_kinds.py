"""The kinds of job, by name: what `JobRunner.start(kind, params)` runs, in whichever process runs it.

A job is described by data (its kind, JSON parameters, its session), never by a function holding
objects in memory, so that the API process can accept it and a worker on another machine run it from
the shared data folder. A kind's function rebuilds what it works on from disk.
"""

from __future__ import annotations

from collections.abc import Mapping

from .jobs import KindFunction
from .services.quant_jobs import analysis_job, measure_job

KINDS: Mapping[str, KindFunction] = {
    "quant": analysis_job,  # {"analysis": folder name under the session's quant/, "max_run_elements"}
    "quant-measure": measure_job,  # {"analysis", "base", "int16", "overrides", "max_run_elements"}
}
