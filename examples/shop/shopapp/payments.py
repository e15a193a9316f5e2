"""The payments service: a separate process that the shop charges orders through.

Charges are idempotent: a retried ``POST /charges`` with the same ``Idempotency-Key``
answers the charge made the first time instead of charging twice.

Run: ``python -m uvicorn shopapp.payments:app --port 8001``.
"""

import itertools
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_charges: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()
_ids = itertools.count(1)


async def charge(request: Request) -> JSONResponse:
    key = request.headers.get("idempotency-key")
    body = await request.json()
    if not key or not isinstance(body.get("amount"), int) or body["amount"] <= 0:
        return JSONResponse({"error": "need an Idempotency-Key and a positive amount"}, 400)
    with _lock:
        if key in _charges:
            return JSONResponse(_charges[key], 200)  # a retry: the same charge, not a second
        made = {"id": f"ch_{next(_ids)}", "amount": body["amount"], "key": key}
        _charges[key] = made
    return JSONResponse(made, 201)


async def charges(request: Request) -> JSONResponse:
    return JSONResponse({"count": len(_charges)})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/charges", charge, methods=["POST"]),
        Route("/charges", charges, methods=["GET"]),
        Route("/health", health),
    ]
)
