"""The shop: a Starlette web service with an order store, a cache, payments and flags.

- ``GET /products/{sku}``: the product, from the Redis cache when it answers, else from
  the store (``"source": "cache"`` or ``"store"``);
- ``POST /orders`` with ``{"sku": ..., "quantity": ...}``: stores the order and charges it
  through the payments service. Paid: 201. Payments down, slow or switched off by the
  ``live-payments`` flag: the order is kept and waits for payment, 202. Never a 500 for a
  dependency's failure;
- ``GET /orders/{id}``, ``GET /health``, ``GET /stats`` (breakers and cache counters).

Configured by the environment (``create_app()`` reads it):

| variable | meaning |
| --- | --- |
| ``SHOP_PAYMENTS_URL`` | the payments service (required) |
| ``SHOP_REDIS_URL`` | the cache, ``redis://host:port``; none: no cache |
| ``SHOP_FLAGS_URL`` | an OFREP flag server; none: every flag its default |
| ``SHOP_DB`` | the SQLite file; default in memory |
| ``SHOP_NAIVE=1`` | the naive variant: the payments client has no timeout |
| ``SHOP_VERSION`` | the version ``/health`` reports (``v1``) |
| ``SHOP_FAIL_EVERY=N`` | a bad release: every Nth product page answers 500 |

Run: ``SHOP_PAYMENTS_URL=http://127.0.0.1:8001 python -m uvicorn --factory shopapp.app:create_app``.
"""

import itertools
import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shopapp.cache import Cache
from shopapp.flags import Flags
from shopapp.payments_client import PaymentsClient, PaymentUnavailable
from shopapp.store import OrderStore


@dataclass
class Settings:
    payments_url: str
    redis_url: str | None = None
    flags_url: str | None = None
    db: str = ":memory:"
    naive: bool = False
    version: str = "v1"
    fail_every: int = 0

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        return cls(
            payments_url=env["SHOP_PAYMENTS_URL"],
            redis_url=env.get("SHOP_REDIS_URL") or None,
            flags_url=env.get("SHOP_FLAGS_URL") or None,
            db=env.get("SHOP_DB") or ":memory:",
            naive=env.get("SHOP_NAIVE") == "1",
            version=env.get("SHOP_VERSION") or "v1",
            fail_every=int(env.get("SHOP_FAIL_EVERY") or 0),
        )


class Shop:
    def __init__(self, settings: Settings, payments_transport: httpx.BaseTransport | None) -> None:
        self.settings = settings
        self.store = OrderStore(settings.db)
        self.cache = Cache(settings.redis_url) if settings.redis_url else None
        self.payments = PaymentsClient(
            settings.payments_url, naive=settings.naive, transport=payments_transport
        )
        self.flags = Flags(settings.flags_url)
        self.pages = itertools.count(1)

    def product(self, sku: str) -> dict[str, Any] | None:
        key = f"product:{sku}"
        cached = self.cache.get(key) if self.cache else None
        if cached is not None:
            return {**json.loads(cached), "source": "cache"}
        product = self.store.product(sku)
        if product is not None and self.cache:
            self.cache.set(key, json.dumps(product).encode())
        return product and {**product, "source": "store"}

    def order(self, sku: str, quantity: int) -> tuple[int, dict[str, Any]]:
        product = self.store.product(sku)
        if product is None:
            return 404, {"error": f"no product {sku!r}"}
        order_id = self.store.add(sku, quantity, product["price"] * quantity)
        if not self.flags.live_payments():
            self.store.settle(order_id, "awaiting_payment", None, "payments switched off")
        else:
            try:
                charge = self.payments.charge(order_id, product["price"] * quantity)
                self.store.settle(order_id, "paid", charge["id"], None)
            except PaymentUnavailable as error:
                self.store.settle(order_id, "awaiting_payment", None, str(error))
        order = self.store.order(order_id) or {}
        return (201 if order["status"] == "paid" else 202), order


def create_app(
    settings: Settings | None = None, *, payments_transport: httpx.BaseTransport | None = None
) -> Starlette:
    shop = Shop(settings or Settings.from_env(), payments_transport)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": shop.settings.version})

    async def product(request: Request) -> Response:
        if shop.settings.fail_every and next(shop.pages) % shop.settings.fail_every == 0:
            return JSONResponse({"error": "the bad release's bug"}, 500)
        found = await run_in_threadpool(shop.product, request.path_params["sku"])
        if found is None:
            return JSONResponse({"error": "no such product"}, 404)
        return JSONResponse(found)

    async def create_order(request: Request) -> Response:
        body = await request.json()
        try:
            status, order = await run_in_threadpool(
                shop.order, str(body.get("sku")), int(body.get("quantity", 1))
            )
        except sqlite3.Error as error:  # the store is busy or broken: ask to come back
            return JSONResponse({"error": f"store unavailable: {error}"}, 503, {"Retry-After": "1"})
        return JSONResponse(order, status)

    async def get_order(request: Request) -> Response:
        order = await run_in_threadpool(shop.store.order, request.path_params["id"])
        return JSONResponse(order) if order else JSONResponse({"error": "no such order"}, 404)

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                "version": shop.settings.version,
                "payments": {"breaker": shop.payments.state, "requests": shop.payments.requests},
                "cache": shop.cache and {"breaker": shop.cache.state, **shop.cache.stats},
            }
        )

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/products/{sku}", product),
            Route("/orders", create_order, methods=["POST"]),
            Route("/orders/{id:int}", get_order),
            Route("/stats", stats),
        ]
    )
    app.state.shop = shop
    return app
