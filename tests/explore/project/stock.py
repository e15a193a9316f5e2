"""Code under test for the explorer's own tests: clients of two small HTTP services."""

import httpx


class Prices:
    """Handled: any failure of the price service is a missing price."""

    def __init__(self, url):
        self.http = httpx.Client(base_url=url, timeout=0.5)

    def price(self, sku):
        try:
            response = self.http.get(f"/prices/{sku}")
            response.raise_for_status()
            return response.json()["price"]
        except (httpx.HTTPError, ValueError):
            return None


class Stock:
    """Reads the primary (without a timeout: a silent primary hangs the caller), then the
    replica; with both failing, a count of 0 (a swallowed error)."""

    def __init__(self, primary, replica):
        self.stores = [
            httpx.Client(base_url=primary, timeout=None),
            httpx.Client(base_url=replica, timeout=0.5),
        ]

    def count(self, sku):
        for store in self.stores:
            try:
                response = store.get(f"/stock/{sku}")
                response.raise_for_status()
                return response.json()["count"]
            except (httpx.HTTPError, ValueError):
                continue
        return 0
