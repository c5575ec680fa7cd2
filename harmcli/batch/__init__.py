"""One image or a folder of them: the library side of ``harmcli harmonize`` and ``harmcli curves``.

One module per concern, each importable alone:

* :mod:`~harmcli.batch.inputs` — what the command line names (:class:`InputSpec`, three forms, every path a
  file or a folder; :class:`Placement`, where a smaller foreground goes on its background) and
  :func:`match_items`, which pairs folder contents by file stem into :class:`Item` s;
* :mod:`~harmcli.batch.reading` — :class:`InputReader` reads one item (a shared file only once);
* :mod:`~harmcli.batch.outputs` — :func:`plan_output` checks ``-o`` and names each item's output;
* :mod:`~harmcli.batch.jobs` — a job (:class:`HarmonizeJob`, :class:`CurvesJob`) checks, reads, predicts and
  finishes one item;
* :mod:`~harmcli.batch.loop` — :func:`run_one` runs a single item and raises on any problem; :func:`run_batch`
  runs many on a thread pool, keeps going past a bad item and returns a :class:`BatchSummary`;
* :mod:`~harmcli.batch.summary` — :class:`ItemResult` per item and the run's summary line;
* :mod:`~harmcli.batch.sheet` — :class:`ContactSheet`, the before/after pictures of ``harmonize --sheet``.

The names below are the package's public API, so callers write ``from harmcli import batch; batch.run_batch``.
"""

from harmcli.batch.inputs import Form, InputSpec, Item, Placement, Plan, Unmatched, list_images, match_items
from harmcli.batch.jobs import (
    EMPTY_MASK_NOTE,
    CurvesJob,
    Existing,
    FixedPredictor,
    HarmonizeJob,
    NetworkPredictor,
    default_threads,
)
from harmcli.batch.loop import run_batch, run_one
from harmcli.batch.outputs import FALLBACK_EXTENSION, OutputLayout, normalise_extension, plan_output, same_file, written_with
from harmcli.batch.reading import ALL_FOREGROUND, InputReader, LoadedInputs
from harmcli.batch.sheet import ContactSheet, open_sheet, page_paths
from harmcli.batch.summary import BatchSummary, ItemResult, Status, failure_message
from harmcli.errors import HarmcliError

__all__ = [
    "ALL_FOREGROUND", "EMPTY_MASK_NOTE", "FALLBACK_EXTENSION", "BatchSummary", "ContactSheet", "CurvesJob", "Existing",
    "FixedPredictor", "Form", "HarmcliError", "HarmonizeJob", "InputReader", "InputSpec", "Item", "ItemResult",
    "LoadedInputs", "NetworkPredictor", "OutputLayout", "Placement", "Plan", "Status", "Unmatched", "default_threads",
    "failure_message", "list_images", "match_items", "normalise_extension", "open_sheet", "page_paths", "plan_output",
    "run_batch", "run_one", "same_file", "written_with",
]
