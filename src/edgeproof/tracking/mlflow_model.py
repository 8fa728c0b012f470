"""The released ONNX file as an MLflow model: the ``onnx`` flavor, a LoggedModel of the run.

The model directory holds the byte-identical file that was gated (its sha256 is checked), a
signature read from the ONNX graph, an input example of the model's input shape (batch 1) and
the execution providers the benchmark ran on, so ``mlflow.pyfunc.load_model`` runs it as measured.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from edgeproof.io import sha256_file

log = logging.getLogger(__name__)

MAX_EXAMPLE_VALUES = 1_000_000
"""An input example is JSON (~22 bytes a value with its serving copy): kept up to ~576x576 inputs."""
_ONNX_DTYPES = {1: "float32", 10: "float16", 11: "float64", 3: "int8", 2: "uint8", 6: "int32", 7: "int64"}


def _specs(values: Any) -> Any:
    import numpy as np
    from mlflow.types.schema import Schema, TensorSpec

    specs = []
    for value in values:
        tensor = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        specs.append(TensorSpec(np.dtype(_ONNX_DTYPES.get(tensor.elem_type, "float32")), shape, value.name))
    return Schema(specs)


def signature_and_example(onnx_model: Any) -> tuple[Any, Any]:
    """The MLflow signature of an ONNX graph and a zero input of its first input (batch 1)."""
    import numpy as np
    from mlflow.models.signature import ModelSignature

    initializers = {t.name for t in onnx_model.graph.initializer}
    inputs = [v for v in onnx_model.graph.input if v.name not in initializers]
    signature = ModelSignature(inputs=_specs(inputs), outputs=_specs(onnx_model.graph.output))
    spec = signature.inputs.inputs[0]
    shape = [1 if d < 0 else d for d in spec.shape]
    if len(shape) == 4 and min(spec.shape[2:]) < 0:  # dynamic H/W: the size it was exported at (ultralytics)
        from edgeproof.runtime.detector import input_size, parse_metadata

        metadata = parse_metadata({p.key: p.value for p in onnx_model.metadata_props})
        shape[2:] = input_size(spec.shape, metadata, f"ONNX graph {onnx_model.graph.name!r}")
    return signature, {spec.name: np.zeros(shape, dtype=spec.type)}


def _save(path: Path, model_file: Path, providers: list[str], mlflow_model: Any) -> None:
    import mlflow.onnx
    import onnx

    proto = onnx.load_model_from_string(model_file.read_bytes())
    signature, example = signature_and_example(proto)
    size = sum(int(v.size) for v in example.values())
    if size > MAX_EXAMPLE_VALUES:
        log.warning("no input example for %s: %d values would be ~%d MB of JSON", model_file, size, size * 22 // 10**6)
        example = None
    mlflow.onnx.save_model(
        proto,
        str(path),
        mlflow_model=mlflow_model,
        signature=signature,
        input_example=example,
        onnx_execution_providers=providers or ["CPUExecutionProvider"],
        pip_requirements=mlflow.onnx.get_default_pip_requirements(),  # no dependency inference run
        save_as_external_data=False,
    )
    shutil.copyfile(model_file, path / "model.onnx")  # exactly the gated bytes, not a re-serialization


def log_onnx_model(client: Any, exp_id: str, run_id: str, model_file: Path, record: dict[str, Any]) -> str:
    """Log ``model_file`` as the run's LoggedModel (``onnx`` flavor); return its model id.

    The model carries the ``model_sha256`` tag; its status is READY only once its files are in.
    """
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model

    sha = record["tags"].get("model_sha256", "")
    actual = sha256_file(model_file)
    if sha and actual != sha:
        raise ValueError(f"{model_file}: sha256 {actual} differs from the gated model's {sha}")
    providers = [p for p in record["tags"].get("providers", "").split(",") if p]
    tags = {
        "model_sha256": sha,
        "variant": record["tags"].get("variant", ""),
        "edgeproof.record_id": record["record_id"],
    }
    name = f"{record['tags'].get('variant') or 'model'}-{sha[:8]}"
    model = client.create_logged_model(exp_id, name=name, source_run_id=run_id, tags=tags, model_type="onnx")
    try:
        with tempfile.TemporaryDirectory(prefix="edgeproof-model-") as tmp:
            path = Path(tmp) / "model"
            meta = Model(artifact_path=model.artifact_location, run_id=run_id, model_id=model.model_id)
            meta.model_uuid = model.model_id
            _save(path, model_file, providers, meta)
            client.log_model_artifacts(model.model_id, str(path))
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
        client.finalize_logged_model(model.model_id, "READY")
    except BaseException:
        try:
            client.finalize_logged_model(model.model_id, "FAILED")
        except Exception as exc:
            log.warning("could not mark logged model %s as FAILED: %s", model.model_id, type(exc).__name__)
        raise
    return model.model_id
