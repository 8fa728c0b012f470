"""Reading an ultralytics checkpoint without running code from it.

A ``.pt`` file is a pickle: unpickled unrestricted it can run anything. Every checkpoint edgeproof
reads itself (``best.pt``'s own metrics, the resume check's ``last.pt``) goes through
:func:`load_checkpoint_dict`, which uses ultralytics' restricted loader (``torch.load(weights_only=True)``
against its allow-list of model classes), switched on for the whole process by
:func:`edgeproof.training.ultralytics_env.configure`. :func:`reproducible_checkpoint` is what the
``train`` stage publishes as ``models/best.pt``: the same training gives the same bytes.
:func:`finish_checkpoints` does ultralytics' end-of-training clean-up when a kill came before it did.
"""

from __future__ import annotations

import logging
import os
import pickle
import types
from pathlib import Path
from typing import Any

from edgeproof.training.ultralytics_env import configure

log = logging.getLogger(__name__)


def load_checkpoint_dict(path: Path, state: Path | None = None) -> dict[str, Any]:
    """The checkpoint dict in ``path`` (``epoch``, ``ema``, ``optimizer``, ``train_metrics``, ...), loaded restricted.

    Raises ValueError naming the file if it is not a loadable ultralytics checkpoint, including one
    that references anything outside the allow-list (which is refused, never executed).
    """
    configure(state)
    from ultralytics.nn.tasks import torch_safe_load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt, _ = torch_safe_load(str(path), safe_only=True)
    except Exception as exc:  # ultralytics raises TypeError/UnpicklingError/RuntimeError for refused or torn files
        raise ValueError(f"{path}: not a loadable ultralytics checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: not an ultralytics checkpoint (a {type(ckpt).__name__}, not a dict)")
    return ckpt


def _relocatable(value: Any, state: str) -> Any:
    """``value`` with the absolute state-folder prefix of a path string replaced by ``<state>``."""
    if isinstance(value, str) and (value == state or value.startswith(state + "/")):
        return "<state>" + value[len(state) :]
    return value


class _ValueMemoPickler(pickle._Pickler):  # the Python pickler: the C one's save() cannot be overridden
    """A pickler that writes each string value once and refers back to it for every equal string.

    pickle's memo is keyed by object identity: a string that recurs as the same object is written once,
    an equal but distinct one again, so the bytes tell the two apart, and a loaded checkpoint keeps the
    pattern it was written with. That pattern depends on the training process, not on the checkpoint:
    pathlib interns path parts, and ultralytics sets ``yaml_file`` to ``str(Path(cfg))``, which is the
    ``args["model"]`` string itself unless an equal one was interned earlier in that process. Strings
    only: they are what interning shares, and a string means the same whichever object holds it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._strings: dict[str, str] = {}

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        """Save ``obj``, a string as the first string of its value this pickle saw."""
        if type(obj) is str:
            obj = self._strings.setdefault(obj, obj)
        super().save(obj, save_persistent_id)


_VALUE_MEMO_PICKLE = types.SimpleNamespace(__name__="pickle", Pickler=_ValueMemoPickler)
"""What ``torch.save(pickle_module=...)`` reads (``Pickler``, ``__name__``) for :func:`reproducible_checkpoint`."""


def reproducible_checkpoint(path: Path, state: Path) -> bytes:
    """The bytes of ``path`` re-saved without what makes two identical trainings differ.

    ultralytics stores its save time (``date``), per-epoch wall-clock times (``train_results.time``)
    and the run's absolute paths (``train_args``, the model's ``args``: data yaml, project, save dir)
    in every checkpoint. Those are dropped, or made relative to the state folder (``<state>/...``);
    weights, metrics and every other field are kept. Saved with :data:`_VALUE_MEMO_PICKLE`, equal
    checkpoints give equal bytes, whichever of their equal strings are one object.
    """
    import io

    import torch

    ckpt = load_checkpoint_dict(path, state)
    root = str(Path(state).resolve())
    ckpt.pop("date", None)
    ckpt.pop("git", None)  # the repo's absolute root, branch and commit, when ultralytics finds one
    if isinstance(ckpt.get("train_results"), dict):
        ckpt["train_results"] = {k: v for k, v in ckpt["train_results"].items() if k != "time"}
    if isinstance(ckpt.get("train_args"), dict):
        ckpt["train_args"] = {k: _relocatable(v, root) for k, v in ckpt["train_args"].items()}
    for key in ("model", "ema"):
        module = ckpt.get(key)
        if isinstance(getattr(module, "args", None), dict):
            module.args = {k: _relocatable(v, root) for k, v in module.args.items()}
    buffer = io.BytesIO()
    torch.save(ckpt, buffer, pickle_module=_VALUE_MEMO_PICKLE)
    return buffer.getvalue()


def _stripped(ckpt: dict[str, Any]) -> bool:
    """Whether ultralytics' end-of-training ``strip_optimizer`` has run on ``ckpt`` (it sets epoch -1)."""
    return ckpt.get("epoch") == -1 and ckpt.get("optimizer") is None


def _strip(path: Path, updates: dict[str, Any] | None = None) -> dict[str, Any]:
    """ultralytics' ``strip_optimizer`` of ``path``, written beside it and renamed: a kill leaves the old file whole."""
    from ultralytics.utils.torch_utils import strip_optimizer

    partial = path.with_name(path.name + ".partial")
    ckpt = strip_optimizer(path, s=str(partial), updates=updates)
    if not ckpt:  # ultralytics logs and returns {} for a file it cannot read
        raise ValueError(f"{path}: ultralytics could not strip the optimizer from this checkpoint")
    os.replace(partial, path)
    return ckpt


def finish_checkpoints(weights: Path, state: Path) -> bool:
    """Do what ultralytics' ``Trainer.final_eval`` does to a finished run's checkpoints, unless it did; True if done.

    After the last epoch's ``last.pt``/``best.pt`` (with optimizer, EMA, scaler: ~5x the size) ultralytics
    strips ``last.pt``, then ``best.pt`` with ``last.pt``'s ``train_results``. A kill between the two left
    a full trainer checkpoint, which the reused run would publish: the same steps here give
    :func:`reproducible_checkpoint` the bytes an uninterrupted run gives it.
    """
    best, last = Path(weights) / "best.pt", Path(weights) / "last.pt"
    if _stripped(load_checkpoint_dict(best, state)):
        return False
    ckpt = _strip(last) if last.exists() else {}
    _strip(best, updates={"train_results": ckpt.get("train_results")})
    log.info("%s: ultralytics' final clean-up had not run (interrupted); done now", best.parent)
    return True
