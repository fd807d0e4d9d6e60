"""Person numbers that last: ``person_007`` stays ``person_007`` when a library grows.

A clustering numbers its clusters 0.. by size. An OUT that is clustered again (``cluster``, ``add``, ``remove``)
keeps the numbers its previous manifest gave: a new cluster takes the number of the previous cluster it continues,
where each is the other's best match (the new cluster holds more of that person's faces than any other new
cluster does, and more of its own faces came from that person than from any other). A merge keeps the number of
the part that matches best, a split gives it to the part that holds most of the person; every other cluster gets
a number never used before in this OUT, so a retired number is never reused for someone else.
"""

from __future__ import annotations

from collections import Counter

import numpy as np


def stable_numbers(labels: np.ndarray, keys: list[str], previous: dict[str, int] | None,
                   next_free: int) -> tuple[np.ndarray, int]:
    """``labels`` (clusters 0..k-1, negative for no one) renumbered to keep ``previous`` (face key -> the person
    number it had; None for a first clustering: the numbers are the labels), and the next number never used."""
    labels = np.asarray(labels, np.int64)
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    if not previous:
        return labels.copy(), max(next_free, k)
    pairs = Counter((int(c), previous[key]) for c, key in zip(labels.tolist(), keys)
                    if c >= 0 and previous.get(key, -1) >= 0)
    best_old: dict[int, tuple[int, int]] = {}  # new cluster -> (count, previous number); ties: the smaller
    best_new: dict[int, tuple[int, int]] = {}  # previous number -> (count, new cluster); ties: the smaller
    for (c, o), n in sorted(pairs.items()):
        if n > best_old.get(c, (0, -1))[0]:
            best_old[c] = (n, o)
    for (c, o), n in sorted(pairs.items(), key=lambda item: (item[0][1], item[0][0])):
        if n > best_new.get(o, (0, -1))[0]:
            best_new[o] = (n, c)
    number = np.empty(k, np.int64)
    for c in range(k):
        o = best_old.get(c, (0, -1))[1]
        if o >= 0 and best_new[o][1] == c:
            number[c] = o
        else:
            number[c] = next_free
            next_free += 1
    out = labels.copy()
    out[labels >= 0] = number[labels[labels >= 0]]
    return out, next_free
