"""Python activities of the Chaos Toolkit experiments in ``experiments/``: probes, an action
and a tolerance, called by chaostoolkit-lib under ``chaos run`` and under pytest alike."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def _health(base_url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(base_url + "/health", timeout=5) as answer:
            return dict(json.load(answer))
    except urllib.error.HTTPError as error:
        return dict(json.load(error))


def is_up(base_url: str) -> bool:
    return _health(base_url).get("status") == "up"


def status_word(base_url: str) -> str:
    return str(_health(base_url).get("status"))


def stock_level(base_url: str) -> int:
    return int(_health(base_url)["stock"])


def set_stock(base_url: str, count: int) -> int:
    request = urllib.request.Request(base_url + "/stock", data=json.dumps(count).encode())
    with urllib.request.urlopen(request, timeout=5) as answer:
        return int(json.load(answer)["stock"])


def low_enough(value: Any = None) -> bool:
    """A tolerance probe: Chaos Toolkit calls it with the probe's output as ``value``."""
    return isinstance(value, int) and value < 10
