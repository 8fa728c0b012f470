"""The runs table a user opens: MLflow 3's runs view with the headline metrics as columns (no MLflow import).

MLflow 3's runs table shows no metric columns until a user picks them, and it keeps that choice in
the browser. Its *Share* button stores a view as the experiment tag ``mlflow.sharedViewState.<key>``
(JSON of the table's UI state) and opens it with ``?viewStateShareKey=<key>``. edgeproof writes
such a view, :data:`VIEW_KEY`, on its experiment: the run's name, its verdict (the tag
:data:`VERDICT_TAG`, ``✓ passed`` / ``✗ FAILED: fps``, so a failed run stands out without reading a
0), then :data:`KEY_METRICS`, then MLflow's dataset, source and model columns, newest run first.
Every link edgeproof prints to the runs table opens it.
"""

from __future__ import annotations

import json

VIEW_KEY = "key-metrics"
"""The share key of edgeproof's runs view: ``#/experiments/<id>/runs?viewStateShareKey=key-metrics``."""
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
KEY_METRICS = ("mAP50-95", "mAP50", "fps", "latency_p95_ms", "gate_passed")
"""The headline metrics (``metrics/headline.json``, logged under their own names) shown as columns."""
_ATTRIBUTES = ("Dataset", "Source", "Models")  # MLflow's default columns, kept
VERDICT_TAG = "verdict"
"""The run tag holding the gate verdict in words, a column next to the run's name."""


def column(kind: str, name: str) -> str:
    """MLflow UI's column id, e.g. ``metrics.`fps```."""
    return f"{kind}.`{name}`"


def view_state() -> str:
    """The tag value: the runs table's UI state as JSON (MLflow fills every key left out with its default)."""
    metrics = [column("metrics", m) for m in KEY_METRICS]
    verdict = column("tags", VERDICT_TAG)
    state = {
        "selectedColumns": [column("attributes", a) for a in _ATTRIBUTES] + [verdict, *metrics],
        "columnOrder": [column("attributes", "Run Name"), verdict, *metrics],  # next to the name, in this order
        "columnWidths": {
            verdict: 200,  # "✗ FAILED: fps, latency_p95" whole
            **{column("metrics", m): max(100, 9 * len(m) + 24) for m in KEY_METRICS},  # whole names
        },
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
    }
    return json.dumps(state, separators=(",", ":"))


WORKFLOW = "workflowType=machine_learning"
"""MLflow 3's UI-wide GenAI / Model training switch, set to model training (its default is GenAI)."""


def runs_view_path(experiment_id: str) -> str:
    """The UI route (after the server's base URL) of the experiment's runs table with the key metrics,
    in the model-training UI."""
    return f"#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_KEY}&{WORKFLOW}"
