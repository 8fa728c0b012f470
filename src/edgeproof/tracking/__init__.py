"""MLflow as a faithful, replayable projection of the pipeline's files.

The files on disk (params.yaml, metrics/*.json, reports/gate.json, dvc.lock, the ONNX model) are
the source of truth. A pipeline run is first snapshotted into an outbox under the state directory,
then flushed to MLflow; if the tracking server is down the snapshot stays and
``edgeproof track replay`` sends it later. Each record carries a content id, so replaying never
creates duplicates; a record counts as sent only once its MLflow run is FINISHED (params, metrics,
artifacts and registration all in), and leaves the outbox only then. The record also stores the
experiment and registered model it was made for, so a later replay sends it there.

What a user sees (MLflow 3): the experiment is of the model-training kind; a run is named after
the DVC experiment or branch, commit and variant, starts when the ``dvc repro``/``dvc exp run`` that
produced it began (with what each stage took as ``time_s.*``), shows its verdict in a column next to
its name, lists the headline metrics (the detail is in its artifacts), and carries the gate table
as its description, the evaluation dataset as an input and the released ONNX file as its logged
model (``mlflow_model``), linked to its registered version and carrying the headline metrics.
The registry is the release record (``registry``): one version per model file (sha256), its
promotion record fixed once written and every later verdict in its history (``history``), aliases.
Only a clean, committed run (``provenance``: git including untracked inputs, ``dvc status``, and the
files judged being the pipeline's own outputs) registers a model version or moves an alias; another is
logged as a run, marked not clean.

Modules: ``context`` (git, branch, run name, times), ``provenance``, ``record`` (files -> record),
``outbox``, ``mlflow_sink`` (record -> run), ``mlflow_model``, ``registry``, ``aliases``, ``rollback``,
``model_show``, ``history``,
``redact`` (credentials never leave in logs, errors or records), ``keys`` (MLflow-safe names),
``pipeline`` (the entry points).
"""

from __future__ import annotations
