import pytest
from stock import Prices, Stock

from pytest_chaos.explore import expect


@pytest.mark.chaos(weight=3, explore={"replica": expect(503)})
def test_stock_is_counted(serve):
    assert Stock(serve("primary"), serve("replica")).count("tea") == 5


def test_a_missing_price_is_said(serve, chaos_explore):
    price = Prices(serve("prices")).price("tea")
    if chaos_explore.faulted("prices"):
        assert price in (None, 250)
    else:
        assert price == 250


def test_arithmetic():
    assert 1 + 1 == 2


@pytest.mark.chaos(explore=False)
def test_not_explored(serve):
    assert Prices(serve("prices")).price("tea") == 250
