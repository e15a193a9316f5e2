"""The corpus's services, each run as a process of its own:
``python -m corpus.services NAME PORT``, its dependencies' URLs in the environment.

Dependencies (they answer, and that is all): ``inventory``, ``payments``, ``users``,
``search``, ``pricing``, ``store`` (a primary and a replica of it), ``mailer``, ``quota``.

Services under test, each with the dependencies it calls (and how):

- ``orders``: ``POST /orders``. inventory (BUG 1: no timeout), then payments (handled:
  0.5 s timeout, 3 attempts with an idempotency key, the order waits for payment: 202);
- ``profile``: ``GET /profile/{id}``. users (BUG 3: when users fails, the last profile it
  served, whoever it belonged to);
- ``catalog``: ``GET /catalog?q=``. search (BUG 5: a failure answered as 200 with no
  items), pricing (handled: items without prices);
- ``accounts``: ``GET /accounts/{id}``. the primary store, then the replica (handled one
  at a time; BUG 7: when both fail, a balance of 0 with a 200).
"""

from __future__ import annotations

import itertools
import os
import threading

from corpus.web import Answer, App, CallFailed, Request, call, main

# -- dependencies ---------------------------------------------------------------------------


def inventory() -> App:
    app = App()

    @app.route("GET", "/stock/{sku}")
    def stock(request: Request) -> Answer:
        return Answer(200, {"sku": request.params["sku"], "count": 5})

    return app


def payments() -> App:
    """Charges; a charge repeated with the same ``Idempotency-Key`` is the same charge."""
    app = App()
    charges: dict[str, dict[str, object]] = {}
    lock = threading.Lock()
    numbers = itertools.count(1)

    @app.route("POST", "/charges")
    def charge(request: Request) -> Answer:
        key = request.headers.get("idempotency-key") or f"anonymous-{next(numbers)}"
        with lock:
            if key in charges:
                return Answer(200, charges[key])
            made = {"id": f"ch_{len(charges) + 1}", "amount": request.body["amount"]}
            charges[key] = made
        return Answer(201, made)

    @app.route("GET", "/charges")
    def count(request: Request) -> Answer:
        return Answer(200, {"count": len(charges)})

    return app


def users() -> App:
    app = App()

    @app.route("GET", "/users/{id}")
    def user(request: Request) -> Answer:
        return Answer(200, {"id": request.params["id"], "name": request.params["id"].title()})

    return app


def search() -> App:
    app = App()

    @app.route("GET", "/search")
    def found(request: Request) -> Answer:
        term = request.query.get("q", "")
        return Answer(200, {"items": [f"{term} {n}" for n in (1, 2, 3)]})

    return app


def pricing() -> App:
    app = App()

    @app.route("GET", "/prices")
    def prices(request: Request) -> Answer:
        return Answer(200, {"price": 250})

    return app


def mailer() -> App:
    app = App()

    @app.route("POST", "/mail")
    def send(request: Request) -> Answer:
        return Answer(202, {"queued": True})

    return app


def quota() -> App:
    app = App()

    @app.route("GET", "/quota")
    def left(request: Request) -> Answer:
        return Answer(200, {"left": 5})

    return app


def store() -> App:
    app = App()

    @app.route("GET", "/accounts/{id}")
    def account(request: Request) -> Answer:
        return Answer(200, {"id": request.params["id"], "balance": 100})

    return app


# -- services under test --------------------------------------------------------------------


def orders() -> App:
    app = App()
    inventory_url, payments_url = os.environ["INVENTORY_URL"], os.environ["PAYMENTS_URL"]
    numbers = itertools.count(1)

    @app.route("POST", "/orders")
    def order(request: Request) -> Answer:
        number = next(numbers)
        sku = request.body["sku"]
        try:
            # BUG 1: no timeout; an inventory that never answers holds the order for ever
            stock = call("GET", f"{inventory_url}/stock/{sku}", timeout=None)
        except CallFailed as error:
            return Answer(503, {"error": f"inventory unavailable: {error}"}, {"retry-after": "1"})
        if stock["count"] < 1:
            return Answer(409, {"error": "out of stock"})
        for _ in range(3):  # handled: bounded, idempotent retries, then the order waits
            try:
                call(
                    "POST",
                    f"{payments_url}/charges",
                    {"amount": 500},
                    timeout=0.5,
                    headers={"idempotency-key": f"order-{number}"},
                )
                return Answer(201, {"id": number, "status": "paid"})
            except CallFailed:
                continue
        return Answer(202, {"id": number, "status": "awaiting payment"})

    return app


def profile() -> App:
    app = App()
    users_url = os.environ["USERS_URL"]
    last: dict[str, object] = {}

    @app.route("GET", "/profile/{id}")
    def show(request: Request) -> Answer:
        try:
            found = call("GET", f"{users_url}/users/{request.params['id']}", timeout=0.5)
        except CallFailed:
            if last:
                # BUG 3: the fallback is the last profile served, whoever it belonged to
                return Answer(200, {**last, "stale": True})
            return Answer(503, {"error": "users unavailable"})
        last.clear()
        last.update(found)
        return Answer(200, found)

    return app


def catalog() -> App:
    app = App()
    search_url, pricing_url = os.environ["SEARCH_URL"], os.environ["PRICING_URL"]

    @app.route("GET", "/catalog")
    def page(request: Request) -> Answer:
        try:
            items = call("GET", f"{search_url}/search?q={request.query['q']}", timeout=0.5)
        except CallFailed:
            # BUG 5: the failure is swallowed; the page says there is nothing, with a 200
            return Answer(200, {"items": []})
        try:
            price = call("GET", f"{pricing_url}/prices", timeout=0.5)["price"]
        except CallFailed:
            price = None  # handled: the items show, without a price
        return Answer(200, {"items": [{"name": n, "price": price} for n in items["items"]]})

    return app


def accounts() -> App:
    app = App()
    stores = [os.environ["PRIMARY_URL"], os.environ["REPLICA_URL"]]

    @app.route("GET", "/accounts/{id}")
    def account(request: Request) -> Answer:
        for url in stores:  # handled: the replica answers when the primary cannot
            try:
                return Answer(
                    200, call("GET", f"{url}/accounts/{request.params['id']}", timeout=0.5)
                )
            except CallFailed:
                continue
        # BUG 7: with both stores down, a balance of 0 instead of an error
        return Answer(200, {"id": request.params["id"], "balance": 0})

    return app


APPS = {
    "inventory": inventory,
    "payments": payments,
    "users": users,
    "search": search,
    "pricing": pricing,
    "store": store,
    "mailer": mailer,
    "quota": quota,
    "orders": orders,
    "profile": profile,
    "catalog": catalog,
    "accounts": accounts,
}

if __name__ == "__main__":
    main(APPS)
