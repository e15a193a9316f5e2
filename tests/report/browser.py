"""A headless Chromium for tests, driven over the DevTools protocol through a pipe.

``--remote-debugging-pipe`` makes Chromium read protocol messages from file descriptor 3
and write them to 4, each a JSON text ended by a NUL byte: no port, no websocket, no
package to install. A :class:`Page` records what a person would not see: uncaught
exceptions, console errors, and every network request the page made or failed to make.

Without Chromium the tests that need it skip, unless ``PYTEST_CHAOS_REQUIRE_BROWSER=1``
(set in CI), where they fail.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REQUIRE = "PYTEST_CHAOS_REQUIRE_BROWSER"
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
TIMEOUT_S = 30.0


class BrowserError(Exception):
    """Chromium did not start, died, or did not answer in time."""


def chromium_or_skip() -> str:
    """The Chromium executable; skips the test without one (fails when REQUIRE is set)."""
    for name in EXECUTABLES:
        path = shutil.which(name)
        if path:
            return path
    reason = f"no Chromium found (looked for {', '.join(EXECUTABLES)} on PATH)"
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason}, and {REQUIRE}=1 requires one")
    pytest.skip(reason)


@dataclass
class Page:
    """One open tab: what went wrong in it, and what it asked the network for."""

    browser: Browser
    session: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    loaded: set[str] = field(default_factory=set)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript ``expression`` in the page (JSON-serialisable)."""
        answer = self.browser.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            self.session,
        )
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression!r} raised: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self) -> bytes:
        """A PNG of the whole page, not only the viewport."""
        answer = self.browser.call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, self.session
        )
        return base64.b64decode(answer["data"])

    def record(self, method: str, params: dict[str, Any]) -> None:
        """Take in one event of this page."""
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            described = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"uncaught: {described}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            texts = [str(arg.get("value", arg.get("description"))) for arg in params["args"]]
            self.errors.append(f"console.{params['type']}: {' '.join(texts)}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(f"log: {params['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed":
            self.failed.append(f"{params.get('type', '?')}: {params['errorText']}")
        elif method == "Page.lifecycleEvent" and params["name"] == "load":
            self.loaded.add(params["loaderId"])


class Browser:
    """A running headless Chromium; :meth:`open` loads a page and waits for its load event."""

    def __init__(self, executable: str, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        commands, self._commands = os.pipe()
        self._answers, answers = os.pipe()
        self._log = (profile / "chromium.log").open("wb")
        self._log_path = profile / "chromium.log"

        def pipes_at_3_and_4() -> None:  # in the child, before exec
            read, write = os.dup(commands), os.dup(answers)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self._process = subprocess.Popen(
            [executable, *ARGS, "--remote-debugging-pipe", f"--user-data-dir={profile}"],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            preexec_fn=pipes_at_3_and_4,
            close_fds=False,  # would close 3 and 4; Python's own descriptors are not inherited
        )
        os.close(commands)
        os.close(answers)
        self._buffer = b""
        self._next_id = 0
        self._pages: dict[str, Page] = {}
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._answers, selectors.EVENT_READ)

    def open(self, url: str) -> Page:
        """A new tab showing ``url``, after its load event, with every event until then."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = self._pages[session] = Page(self, session)
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable", {}, session)
        self.call("Page.setLifecycleEventsEnabled", {"enabled": True}, session)
        loader = self.call("Page.navigate", {"url": url}, session)["loaderId"]
        deadline = time.monotonic() + TIMEOUT_S
        while loader not in page.loaded:
            self._dispatch(self._receive(deadline, f"the load event of {url}"))
        # one round trip more: whatever Chromium sent before its answer is recorded too
        self.call("Runtime.evaluate", {"expression": "0"}, session)
        return page

    def call(self, method: str, params: dict[str, Any], session: str | None = None) -> Any:
        """Send one command and return its result; events meanwhile go to their pages."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            answer = self._receive(deadline, method)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer["result"]
            self._dispatch(answer)

    def close(self) -> None:
        """Ask Chromium to quit; kill it if it has not within five seconds."""
        try:
            self.call("Browser.close", {})
        except (BrowserError, OSError):
            pass
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._selector.close()
        os.close(self._commands)
        os.close(self._answers)
        self._log.close()

    def _dispatch(self, message: dict[str, Any]) -> None:
        page = self._pages.get(message.get("sessionId", ""))
        if page is not None and "method" in message:
            page.record(message["method"], message.get("params", {}))

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if not self._selector.select(max(deadline - time.monotonic(), 0)):
                raise BrowserError(f"no answer from Chromium for {waiting_for} in {TIMEOUT_S} s")
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                log = self._log_path.read_text(errors="replace")[-2000:]
                raise BrowserError(f"Chromium exited while waiting for {waiting_for}:\n{log}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        answer: dict[str, Any] = json.loads(message)
        return answer
