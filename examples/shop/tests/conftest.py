"""Fixtures of the shop's chaos suite: the shop, its payments service and its Redis, each a
real process started by the ``service`` fixture, with each dependency reached through a
proxy of the ``toxiproxy`` fixture, so that tests can break the network between them.

    shop ──(proxy "payments")──> payments
      ├───(proxy "redis")──────> redis-server      (when on PATH)
      └───(OFREP, flags.url)───> the test's flag store
"""

import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pytest_chaos import probes

SHOP_DIR = Path(__file__).resolve().parent.parent
if str(SHOP_DIR) not in sys.path:
    sys.path.insert(0, str(SHOP_DIR))  # for the in-process tests: import shopapp

NEEDS = (
    "starlette",
    "uvicorn",
    "tenacity",
    "pybreaker",
    "redis",
    "openfeature.contrib.provider.ofrep",
)


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:  # a parent package is missing
        return True


MISSING = [name for name in NEEDS if _missing(name)]


@pytest.fixture(autouse=True)
def _shop_dependencies():
    """The shop needs a few packages beyond pytest-chaos; without them its tests skip."""
    if MISSING:
        pytest.skip(f"the shop needs {', '.join(MISSING)}: pip install 'pytest-chaos[examples]'")


UVICORN = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}"]
QUIET = ["--no-access-log", "--log-level", "warning"]


@pytest.fixture
def payments(service):
    """The payments service, a process of its own."""
    return service.process(
        "payments",
        [*UVICORN, *QUIET, "shopapp.payments:app"],
        cwd=SHOP_DIR,
        ready=probes.http("/health"),
    )


@pytest.fixture
def payments_link(toxiproxy, payments):
    """The proxy "payments" between the shop and the payments service."""
    return toxiproxy.proxy("payments", upstream=payments.address)


@pytest.fixture
def redis(service):
    """A real redis-server, or a skip saying how to get one (a failure in CI, where
    PYTEST_CHAOS_REQUIRE_REDIS=1)."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not on PATH (Debian: apt-get install redis-server)"
        if os.environ.get("PYTEST_CHAOS_REQUIRE_REDIS") == "1":
            pytest.fail(message + "; PYTEST_CHAOS_REQUIRE_REDIS=1 makes that a failure")
        pytest.skip(message)
    argv = ["redis-server", "--port", "{port}", "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no"]
    return service.process("redis", argv, ready=probes.log("Ready to accept connections"))


@pytest.fixture
def redis_link(toxiproxy, redis):
    """The proxy "redis" between the shop and Redis."""
    return toxiproxy.proxy("redis", upstream=redis.address)


@pytest.fixture
def start_shop(service, payments_link) -> Callable[..., object]:
    """Starts a shop process talking to payments through its proxy:
    ``start_shop(name="shop", redis=None, flags_url=None, **env)``, where ``redis`` is a
    proxy handle (the cache goes through it) and ``env`` adds ``SHOP_*`` settings
    (``naive="1"``, ``version="v2"``, ``fail_every="2"``, ``db=path``)."""

    def start(name="shop", *, redis=None, flags_url=None, **settings):
        env = {"SHOP_PAYMENTS_URL": f"http://{payments_link.listen}"}
        if redis is not None:
            env["SHOP_REDIS_URL"] = f"redis://{redis.listen}/0"
        if flags_url is not None:
            env["SHOP_FLAGS_URL"] = flags_url
        env.update({f"SHOP_{key.upper()}": str(value) for key, value in settings.items()})
        argv = [*UVICORN, *QUIET, "--factory", "shopapp.app:create_app"]
        return service.process(name, argv, env=env, cwd=SHOP_DIR, ready=probes.http("/health"))

    return start


@pytest.fixture
def shop(start_shop):
    """The shop, without a cache or flags."""
    return start_shop()


@pytest.fixture
def shop_client(shop):
    with httpx.Client(base_url=shop.url, timeout=5) as client:
        yield client


@pytest.fixture
def inner_env() -> dict[str, str]:
    """The environment for a pytest (or pytest-chaos) run started by a test: this one's,
    without what would change that run (pytest's and pytest-chaos's variables, but
    PYTEST_CHAOS_REQUIRE_REDIS; GitHub's step summary)."""
    return {
        key: value
        for key, value in os.environ.items()
        if key == "PYTEST_CHAOS_REQUIRE_REDIS"
        or not (key.startswith("PYTEST_") or key == "GITHUB_STEP_SUMMARY")
    }


@pytest.fixture
def eventually() -> Callable[..., object]:
    """``eventually(check, timeout_s=5)``: calls ``check()`` until it returns something
    true, and returns that; fails the test with the last value once the time is up. For
    waiting on a recovery (a circuit breaker closing) without a bare sleep."""

    def wait(check, timeout_s=5.0):
        deadline = time.monotonic() + timeout_s
        while True:
            value = check()
            if value or time.monotonic() > deadline:
                assert value, f"still not true after {timeout_s} s: {value!r}"
                return value
            time.sleep(0.05)

    return wait


@pytest.fixture
def cached_shop(start_shop, redis_link):
    """A shop whose cache is Redis, reached through the proxy "redis"."""
    return start_shop(redis=redis_link)


@pytest.fixture
def cached_client(cached_shop):
    with httpx.Client(base_url=cached_shop.url, timeout=5) as client:
        yield client
