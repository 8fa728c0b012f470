"""ONNX export of a trained ultralytics checkpoint, checked, fingerprinted and bit-reproducible.

The same weights give the same ``model.onnx`` bytes wherever and whenever they are exported:
ultralytics' metadata is kept except its export time (``date``, dropped) and the absolute path of
the training data in ``description`` (dropped), and the file is tied to its weights by a digest of
the tensors (``edgeproof_weights_sha256``), not of the checkpoint file, whose bytes carry
ultralytics' save time and local paths. Variants built from ``model.onnx`` copy these properties.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from edgeproof.folders import scratch_dir
from edgeproof.io import atomic_path, sha256_file
from edgeproof.training.checkpoint import load_checkpoint_dict
from edgeproof.training.ultralytics_env import configure


def _dims(value_info: Any) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _fix_spatial_dims(model: Any, imgsz: int) -> None:
    """ultralytics' ``dynamic=True`` makes batch, height and width dynamic; keep only batch dynamic.

    A fixed input size is what the model was trained for, lets TensorRT build one optimisation
    profile, and lets shape inference fold the head's shape arithmetic.
    """
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim in (dims[2], dims[3]):
        dim.Clear()
        dim.dim_value = imgsz


def _fix_output_dims(model: Any) -> None:
    """Replace the symbolic channel/anchor output dims with their values (from one real run), so
    consumers can read the class count from the graph and TensorRT sees static shapes."""
    import numpy as np

    from edgeproof.runtime.session import create_session

    session = create_session(model.SerializeToString(), ["CPUExecutionProvider"], "disable")
    inp = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    outputs = session.run(None, {inp.name: np.zeros(shape, np.float32)})
    for value_info, array in zip(model.graph.output, outputs, strict=True):
        for dim, size in list(zip(value_info.type.tensor_type.shape.dim, array.shape, strict=True))[1:]:
            dim.Clear()
            dim.dim_value = size


def weights_sha256(torch_model: Any) -> str:
    """sha256 of a torch module's tensors (name, dtype, shape, bytes, in state-dict order)."""
    digest = hashlib.sha256()
    for name, tensor in torch_model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).numpy().tobytes())
    return digest.hexdigest()


def reproducible_metadata(props: dict[str, str], weights_digest: str) -> dict[str, str]:
    """ultralytics' ONNX metadata without its timestamp and local paths, plus the weights digest."""
    meta = {k: v for k, v in props.items() if k != "date"}
    if "description" in meta:  # "Ultralytics YOLOv5n model trained on /home/<user>/.../data.yaml"
        meta["description"] = meta["description"].split(" trained on ")[0].strip()
    meta["edgeproof_weights_sha256"] = weights_digest
    return meta


def check_trained_size(ckpt: dict[str, Any], weights: Path, imgsz: int) -> None:
    """Raise ValueError unless the checkpoint was trained at ``imgsz`` (its ``train_args.imgsz``).

    The export's input size is params' ``train.imgsz``; a ``best.pt`` trained at another size would export,
    pass parity (PyTorch runs at the export size too) and ship a model run at a size it never learnt.
    """
    args = ckpt.get("train_args")
    trained = args.get("imgsz") if isinstance(args, dict) else None
    sizes = list(trained) if isinstance(trained, list | tuple) else [trained]
    if trained is None or any(s != imgsz for s in sizes):
        found = "has no train_args.imgsz" if trained is None else f"was trained at train_args.imgsz {trained!r}"
        raise ValueError(
            f"{weights}: {found}, and the export size is params.yaml's train.imgsz {imgsz}: export only weights "
            "trained at that size (retrain with `dvc repro`, or set train.imgsz to the size they were trained at)"
        )


def export_onnx(weights: Path, out: Path, imgsz: int, opset: int, dynamic_batch: bool, state: Path) -> dict[str, Any]:
    """Export ``weights`` to ONNX at ``out`` (atomically) and return facts about the file.

    Refused (ValueError) when ``weights`` was not trained at ``imgsz`` (:func:`check_trained_size`).
    """
    import onnx

    yolo_cls = configure(state)
    # a torn or refused .pt: a ValueError naming it, not ultralytics' TypeError
    check_trained_size(load_checkpoint_dict(weights, state), weights, imgsz)
    with scratch_dir(out) as tmp:  # a killed export's scratch folder is deleted by the next export
        local = tmp / "model.pt"  # ultralytics writes the .onnx next to the .pt
        shutil.copyfile(weights, local)
        yolo = yolo_cls(str(local))
        digest = weights_sha256(yolo.model)  # the weights as loaded, before the exporter touches the model
        produced = yolo.export(
            format="onnx",
            imgsz=imgsz,
            opset=opset,
            dynamic=dynamic_batch,
            simplify=False,
            half=False,
            nms=False,
            device="cpu",
            batch=1,
        )
        model = onnx.load(str(produced))
        if dynamic_batch:
            _fix_spatial_dims(model, imgsz)
        _fix_output_dims(model)
        model = onnx.shape_inference.infer_shapes(model)
        meta = reproducible_metadata({p.key: p.value for p in model.metadata_props}, digest)
        del model.metadata_props[:]
        onnx.helper.set_model_props(model, meta)
        onnx.checker.check_model(model, full_check=True)
        with atomic_path(out, suffix=".onnx") as tmp_out:
            onnx.save(model, str(tmp_out))
    return describe_onnx(out)


def describe_onnx(path: Path) -> dict[str, Any]:
    """sha256, size, opset, I/O shapes and node count of an ONNX file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {
        "sha256": sha256_file(path),
        "size_bytes": path.stat().st_size,
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "inputs": {i.name: _dims(i) for i in model.graph.input},
        "outputs": {o.name: _dims(o) for o in model.graph.output},
        "nodes": len(model.graph.node),
    }
