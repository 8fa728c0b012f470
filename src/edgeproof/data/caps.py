"""Seeded caps: which images stay when a split holds more than a cap allows.

One home for the rule behind both val caps, the data stage's (``data.<source>.max_val_images``) and
the bundle's on-device subset (``bundle.max_val_images``): labelled and background images are capped
separately, in proportion, so the share of background images the mAP is measured on is the split's,
not the luck of the draw; and each group is taken in one seeded order that depends on nothing but the
image's own key, so a larger cap keeps a smaller cap's images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def hash_order(keys: Sequence[str], seed: int, salt: str) -> np.ndarray:
    """Indices of ``keys`` in a seeded pseudo-random order that does not depend on the other keys."""
    prefix = f"{seed}\x00{salt}\x00".encode()
    values = np.fromiter(
        (int.from_bytes(hashlib.blake2b(prefix + k.encode(), digest_size=8).digest(), "big") for k in keys),
        dtype=np.uint64,
        count=len(keys),
    )
    return np.argsort(values, kind="stable")


def capped(keys: Sequence[str], cap: int, seed: int, salt: str) -> list[int]:
    """Positions of the ``cap`` of ``keys`` first in the seeded order (sorted); all of them when under the cap."""
    return sorted(int(j) for j in hash_order(keys, seed, salt)[:cap])


def capped_keeping_share(keys: Sequence[str], labelled: Sequence[bool], cap: int, seed: int, salt: str) -> list[int]:
    """Positions of the ``cap`` of ``keys`` kept with the share of ``labelled`` ones unchanged (sorted).

    The labelled and background keys are capped separately, in proportion to their numbers, with at
    least one labelled key kept where there is one (a rare class stays measurable); each group keeps
    its own seeded order, so a larger cap keeps a smaller cap's keys.
    """
    if len(keys) <= cap:
        return list(range(len(keys)))
    groups = [[j for j, lab in enumerate(labelled) if lab], [j for j, lab in enumerate(labelled) if not lab]]
    n_labelled = max(round(cap * len(groups[0]) / len(keys)), 1 if groups[0] else 0)
    kept: list[int] = []
    for group, n in zip(groups, (n_labelled, cap - n_labelled), strict=True):
        kept += [group[j] for j in capped([keys[j] for j in group], n, seed, salt)]
    return sorted(kept)
