"""Choices and hostile values for the NEFF edits: a Chooser draws from random.Random, an atheris
FuzzedDataProvider or a hypothesis draw alike; the values are of wrong types, huge, deeply nested,
or tagged arrays with odd dtypes."""
from __future__ import annotations

import random

# ------------------------------------------------------------------------------------ choosers

class Chooser:
    """Draws small choices from a random.Random, a FuzzedDataProvider or a hypothesis draw."""

    def __init__(self, below):
        self.below = below      # below(n) -> int in [0, n)

    def pick(self, seq):
        seq = list(seq)
        return seq[self.below(len(seq))]

    def chance(self, k: int = 2) -> bool:
        return self.below(k) == 0


def random_chooser(rng: random.Random) -> Chooser:
    return Chooser(lambda n: rng.randrange(n) if n > 1 else 0)


def provider_chooser(fdp) -> Chooser:
    return Chooser(lambda n: fdp.ConsumeIntInRange(0, n - 1) if n > 1 else 0)


# ------------------------------------------------------------------------------ hostile values

ODD_DTYPES = ["object", "O", "V8", "U3", "S2", "<M8[s]", "m8[ns]", "complex128", "complex64",
              "float128", "longdouble", "int4", "bogus", "", ">f4", "<i8", "float64", "bool",
              "bfloat16", "U250000000", "S1000000000", "(2,3)f4", "f4,i4", "i8,(1000000)f8", 5,
              None, ["f4"], {"a": 1}, "float32"]
HUGE_INTS = [2 ** 31, -2 ** 31 - 1, 2 ** 53 + 1, 2 ** 63, -2 ** 63 - 1, 2 ** 64, 10 ** 30]


def deep(depth: int, leaf=0, as_dict: bool = False):
    value = leaf
    for _ in range(depth):
        value = {"k": value} if as_dict else [value]
    return value


def tagged(ch: Chooser):
    payload = ch.pick([[1, 2, 3], [], "abc", [[1], [2, 3]], deep(40), [1e308] * 3, [2 ** 70],
                       None, {"a": 1}, [0] * 1000, [[0.5] * 4] * 4, [True, "x"]])
    value = {"__ndarray__": payload, "dtype": ch.pick(ODD_DTYPES)}
    extra = ch.below(4)
    if extra == 1:
        del value["dtype"]
    elif extra == 2:
        value["shape"] = ch.pick([[-1], [2 ** 40], "x", [3, 1]])
    elif extra == 3:
        value["__ndarray__"] = tagged(ch) if ch.chance() else {"__ndarray__": [1], "dtype": "int64"}
    return value


def other_types(ch: Chooser, old):
    """A value of another JSON type than `old` (a bool is not counted as a number)."""
    pool = [None, True, False, "", "x", "float32", "\u0000\uffff", [], [old], {}, {"v": old},
            deep(ch.pick([20, 200, 900])), deep(ch.pick([20, 200, 900]), as_dict=True),
            [0] * ch.pick([3, 100_000]), "a" * ch.pick([10, 1_000_000]), tagged(ch), 0, -1, 1.5,
            ch.pick(HUGE_INTS), 1e308]
    for _ in range(8):      # bounded: a different type is found in a try or two
        value = ch.pick(pool)
        if type(value) is not type(old):
            return value
    return None if old is not None else "x"


def int_value(ch: Chooser, old, n: int = 0):
    """For int fields that are not attributes (ids, offsets, sizes, counts): ints around the
    valid range, huge ints, and other types."""
    if ch.chance(3):
        return other_types(ch, old)
    return ch.pick([-1, 0, 1, n, n - 1, (old or 0) + 1, (old or 0) - 1, 2 ** 62, ch.pick(HUGE_INTS)])


def hostile(ch: Chooser, old, n: int = 0):
    """A replacement for a non-attribute field of any type."""
    if isinstance(old, bool) or not isinstance(old, int):
        return other_types(ch, old) if not isinstance(old, list) or ch.chance() else list_edit(ch, old)
    return int_value(ch, old, n)


def list_edit(ch: Chooser, seq: list) -> list:
    seq = list(seq)
    kind = ch.below(6)
    if kind == 0 or not seq:
        return [] if seq else [ch.pick([0, -1, None, "x"])]
    if kind == 1:
        return seq + seq
    if kind == 2:
        return seq[::-1] if len(seq) > 1 else seq + seq
    if kind == 3:
        k = ch.below(len(seq))
        return seq[:k] + seq[k + 1:]
    if kind == 4:
        k = ch.below(len(seq))
        return seq[:k] + [seq[k]] + seq[k:]
    k = ch.below(len(seq))
    seq[k] = hostile(ch, seq[k], len(seq))
    return seq


def dict_edit(ch: Chooser, d: dict, field_values=None) -> str:
    """Delete a key, add an extra one, or replace a value; returns what it did."""
    keys = sorted(d)
    kind = ch.below(3)
    if kind == 0 and keys:
        key = ch.pick(keys)
        del d[key]
        return f"deleted {key!r}"
    if kind == 1 or not keys:
        key = ch.pick(["extra", "__class__", "__ndarray__", "", "inputs", "op"])
        if key in d:
            key = key + "_"
        d[key] = other_types(ch, None)
        return f"added {key!r}"
    key = ch.pick(keys)
    d[key] = field_values(key, d[key]) if field_values else hostile(ch, d[key])
    return f"replaced {key!r}"


