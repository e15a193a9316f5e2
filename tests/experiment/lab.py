"""A pytester folder with the experiment tests' shop: ``shop_app.py`` and a conftest whose
fixtures put the backend behind the proxy "stock" and start a resilient and a fragile shop."""

from __future__ import annotations

from pathlib import Path

import pytest

SHOP_APP = (Path(__file__).parent / "shop_app.py").read_text()

#: The inner sessions' common part: the backend behind the proxy "stock", and the shop.
CONFTEST = """
import pytest
from shop_app import Backend, serve, shop_handler


@pytest.fixture
def stock(toxiproxy):
    with serve(Backend) as address:
        yield toxiproxy.proxy("stock", upstream=address)


@pytest.fixture
def resilient_shop(stock):
    with serve(shop_handler(f"http://{stock.listen}/", timeout_s=0.2)) as address:
        yield f"http://{address}"


@pytest.fixture
def fragile_shop(stock):
    with serve(shop_handler(f"http://{stock.listen}/", timeout_s=None)) as address:
        yield f"http://{address}"
"""


def shop_lab(pytester: pytest.Pytester) -> pytest.Pytester:
    """``pytester`` with the shop and its fixtures."""
    pytester.makepyfile(shop_app=SHOP_APP)
    pytester.makeconftest(CONFTEST)
    pytester.syspathinsert()  # for plugins of the test's own (-p conftest_hooks)
    return pytester
