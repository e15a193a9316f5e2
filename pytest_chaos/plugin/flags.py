"""The ``flags`` fixture: a fresh flag store per test, with a clock the test moves, and the
store's OFREP server on a free loopback port for services under test in other processes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, final

from pytest_chaos.flags.changes import ManualClock
from pytest_chaos.flags.ofrep import OfrepServer
from pytest_chaos.flags.store import FlagConfigError, FlagStore


@final
class Flags:
    """What the ``flags`` fixture gives a test: ``store`` (define, enable, kill... and
    evaluate flags), ``clock`` (a :class:`ManualClock` at the current time: ``advance()``
    moves gradual rollouts), ``load()`` for Unleash documents, and ``url``: the OFREP
    server (with its loopback admin API), started on first use."""

    def __init__(self) -> None:
        self.clock = ManualClock(time.time())
        self.store = FlagStore(clock=self.clock)
        self._server: OfrepServer | None = None

    def load(self, source: Mapping[str, Any] | str | os.PathLike[str]) -> None:
        """Add every feature (and segment) of an Unleash feature-toggle document, or of a
        delta API document: a dict, or the path of a JSON file holding one."""
        state: Any = source
        if not isinstance(source, Mapping):
            path = Path(source)
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                raise FlagConfigError(f"flags file {str(path)!r}: {error}") from None
        try:
            self.store.load_unleash(state)
        except FlagConfigError as error:
            raise FlagConfigError(f"{error} (in {source!r})") from None

    @property
    def server(self) -> OfrepServer:
        """The OFREP server of the store (started on first use)."""
        if self._server is None:
            self._server = OfrepServer(self.store).start()
        return self._server

    @property
    def url(self) -> str:
        """The OFREP server's base URL, for an OFREP provider or a service's settings."""
        return self.server.url

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
