"""jsonable: what a JSON round trip gives, whether the value takes the direct copy or the round trip."""

from __future__ import annotations

import json
import math

import numpy as np

from agentgym.rollout.trajectory import jsonable


def round_trip(value):
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else list(o)))


def test_plain_values_are_copied_as_a_round_trip_would_give_them():
    info = {"turn": 3, "ok": True, "none": None, "f": -0.0, "big": 10**40, "s": "é", "l": [1, [2.5, {"k": "v"}]]}
    copied = jsonable(info)
    assert copied == round_trip(info) and copied is not info and copied["l"] is not info["l"]
    assert math.isnan(jsonable({"x": float("nan")})["x"])


def test_other_values_take_the_round_trip():
    assert jsonable({"t": (1, 2), 3: "int key", "np": np.float32(0.5), "set": {7}}) == {
        "t": [1, 2], "3": "int key", "np": 0.5, "set": [7]}
    assert jsonable([True, (1,)]) == [True, [1]]
    assert type(jsonable({"flag": np.bool_(True)})["flag"]) is bool
