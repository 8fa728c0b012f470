"""The one rule for per-class keys: the key every per-class figure of a category goes under.

The data report's counts, evaluate's PR curves, charts and plot data, and MLflow's
``eval.class.<key>`` metrics all key classes by :func:`class_keys`, so one class has one key
everywhere and two classes never share one. (In MLflow a key that breaks its naming rules is cleaned
once over every class key, so ``data.*`` and ``eval.class.*`` show a class under the same cleaned name:
:func:`edgeproof.tracking.class_metrics.class_segments`.)

A module of its own (pure, no imports of ours): the stages that key classes depend on this rule and
on nothing else of the dataset's code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

ALL = "all"
"""The label of evaluation's aggregate over every class (PR and F1 curves, AP50 chart)."""
BACKGROUND = "background"
"""The confusion matrix's label for no class (missed boxes, false alarms)."""
RESERVED = frozenset({ALL, BACKGROUND})
"""Labels the evaluation's series use for themselves: never a class's key."""


def class_keys(categories: Iterable[tuple[int, str]]) -> dict[int, str]:
    """Per category id, from ``(id, name)`` pairs (ids distinct), the key of that category's figures.

    A name only one category has is its key as it is (``猫`` and ``狗`` stay apart; MLflow's key
    rules are applied where figures are logged, by :func:`edgeproof.tracking.keys.clean_keys`,
    which keeps distinct keys distinct). A name several categories share is told apart by the id
    (``car#3``, ``car#7``), and by the id again while that is another class's own name: a class
    named ``car#3`` keeps ``car#3``, and the ``car`` with id 3 becomes ``car#3#3``.

    A class named like one of the evaluation's own labels (:data:`RESERVED`: ``all``, ``background``)
    is told apart the same way (``all#4``), even alone: its curve would otherwise be taken for the
    aggregate over every class, or its confusion row for the misses.

    Collision-free by construction, and the same whatever the order of ``categories``: a told-apart
    key ends in ``#<its own id>`` (an integer, which holds no ``#``), so two categories never get
    the same one, and one is only kept when no class has it as its own name.
    """
    cats = [(int(i), str(name)) for i, name in categories]
    shared = Counter(name for _, name in cats)
    own = {name for _, name in cats if shared[name] == 1 and name not in RESERVED}
    keys = {}
    for cat_id, name in cats:
        key = name
        if shared[name] > 1 or name in RESERVED:
            key = f"{name}#{cat_id}"
            while key in own:  # a class's own name stays that class's key alone
                key = f"{key}#{cat_id}"
        keys[cat_id] = key
    return keys


def keys_in_order(names: Sequence[str], category_ids: Sequence[int]) -> list[str]:
    """The :func:`class_keys` of ``meta.json``'s classes, in model class index order."""
    keys = class_keys(zip(category_ids, names, strict=True))
    return [keys[int(i)] for i in category_ids]
