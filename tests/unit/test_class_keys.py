"""Per-class keys: one rule (:func:`edgeproof.data.classkeys.class_keys`), never two classes on one key."""

from __future__ import annotations

import itertools
import random

import pytest

from edgeproof.data.classkeys import class_keys, keys_in_order


def test_unique_names_keep_their_name_and_shared_ones_get_the_id():
    keys = class_keys([(1, "猫"), (2, "狗"), (3, "car"), (4, "car")])
    assert keys == {1: "猫", 2: "狗", 3: "car#3", 4: "car#4"}


def test_a_class_named_like_a_told_apart_key_keeps_it():
    keys = class_keys([(3, "car"), (5, "car"), (7, "car#3")])
    assert keys == {3: "car#3#3", 5: "car#5", 7: "car#3"}
    assert len(set(keys.values())) == 3


def test_a_class_named_like_an_evaluation_label_is_told_apart_even_alone():
    """``all`` is the curves' aggregate and ``background`` the confusion matrix's no-class label."""
    keys = class_keys([(4, "all"), (5, "background"), (6, "cat"), (7, "all#4")])
    assert keys == {4: "all#4#4", 5: "background#5", 6: "cat", 7: "all#4"}
    assert not {"all", "background"} & set(keys.values())


def test_the_id_is_repeated_while_the_key_is_still_taken():
    keys = class_keys([(3, "car"), (5, "car"), (7, "car#3"), (8, "car#3#3")])
    assert keys == {3: "car#3#3#3", 5: "car#5", 7: "car#3", 8: "car#3#3"}


@pytest.mark.parametrize("seed", range(20))
def test_keys_are_distinct_and_do_not_depend_on_order(seed):
    """Names built from a few parts and ``#<id>`` suffixes: shared, plain and look-alike ones mixed."""
    rng = random.Random(seed)
    parts = ["car", "#", "1", "2", "3", "#1", "#2"]
    names = ["".join(rng.choices(parts, k=rng.randint(1, 4))) for _ in range(12)]
    cats = list(zip(rng.sample(range(-3, 10), 12), names, strict=True))
    keys = class_keys(cats)
    assert len(set(keys.values())) == len(cats)
    plain = [name for _, name in cats if names.count(name) == 1]
    assert all(keys[i] == name for i, name in cats if name in plain)
    for order in itertools.islice(itertools.permutations(cats), 5):
        assert class_keys(order) == keys
    rng.shuffle(cats)
    assert class_keys(cats) == keys


def test_keys_in_order_follow_the_class_index():
    assert keys_in_order(["car", "bus", "car"], [9, 2, 4]) == ["car#9", "bus", "car#4"]
