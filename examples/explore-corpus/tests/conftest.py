"""Fixtures of the corpus: each service a real process started by the ``service``
fixture (``python -m corpus.services NAME PORT``), each dependency of a service under test
reached through a proxy of the ``toxiproxy`` fixture named after it."""

import sys
from pathlib import Path

import httpx
import pytest

from pytest_chaos import probes

CORPUS = Path(__file__).resolve().parent.parent
if str(CORPUS) not in sys.path:
    sys.path.insert(0, str(CORPUS))  # the in-process tests import corpus.clients


@pytest.fixture
def start(service):
    """``start(kind, name=kind, **urls)``: the service ``kind`` as the process ``name``,
    with ``NAME_URL`` in its environment for each of ``urls``."""

    def start(kind, name=None, **urls):
        env = {f"{key.upper()}_URL": url for key, url in urls.items()}
        argv = [sys.executable, "-m", "corpus.services", kind, "{port}"]
        return service.process(
            name or kind, argv, cwd=CORPUS, env=env, ready=probes.log("listening on")
        )

    return start


@pytest.fixture
def through(toxiproxy):
    """``through(dependency)``: the URL of a proxy to the service ``dependency``, named
    as it is."""

    def through(dependency):
        return f"http://{toxiproxy.proxy(dependency.name, upstream=dependency.address).listen}"

    return through


@pytest.fixture
def client():
    """``client(service)``: the test's own HTTP client of a service under test."""
    clients = []

    def client(service):
        clients.append(httpx.Client(base_url=service.url, timeout=30))
        return clients[-1]

    yield client
    for made in clients:
        made.close()


@pytest.fixture
def payments(start):
    return start("payments")


@pytest.fixture
def orders(start, through, payments):
    inventory = start("inventory")
    return start("orders", inventory=through(inventory), payments=through(payments))


@pytest.fixture
def profile(start, through):
    """The profile service, which has already served alice's profile."""
    users = start("users")
    profile = start("profile", users=through(users))
    assert httpx.get(f"{profile.url}/profile/alice").json()["name"] == "Alice"
    return profile


@pytest.fixture
def catalog(start, through):
    search, pricing = start("search"), start("pricing")
    return start("catalog", search=through(search), pricing=through(pricing))


@pytest.fixture
def accounts(start, through):
    primary, replica = start("store", "primary"), start("store", "replica")
    return start("accounts", primary=through(primary), replica=through(replica))
