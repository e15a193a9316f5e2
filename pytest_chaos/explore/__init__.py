"""Automatic fault exploration (``pytest --chaos-explore``): each test once without faults,
recording what it uses; then under each fault that fits each of those; then combinations,
pruned by what the runs showed. Nothing here imports pytest: the plugin wires it.

- :mod:`.cells`: what a run is (its faults), and its id;
- :mod:`.catalogue`: the faults for each kind of dependency;
- :mod:`.recording`: what a run used; :mod:`.run` and its helpers watch and break one run
  (:mod:`.links`, :mod:`.httpx_capture`, :mod:`.calls`, :mod:`.hang`);
- :mod:`.expectations`: declared expectations; :mod:`.outcome`: how a run ended;
- :mod:`.planner`: which runs to make; :mod:`.rounds`: making them, in child sessions;
- :mod:`.results`: the matrix, the held share and the gate.

Users write ``from pytest_chaos import expect`` (the facade).
"""

from __future__ import annotations

from pytest_chaos.explore.expectations import Expectation, expect

__all__ = ["Expectation", "expect"]
