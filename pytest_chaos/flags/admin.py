"""The admin API beside the OFREP routes: list, put, enable, disable, remove, kill, revive.

Every change goes through the store, so listeners and the audit see it. Errors are
``{"error": "..."}`` naming the bad value; an unknown flag is a 404.
"""

from __future__ import annotations

from typing import Any, final

from pytest_chaos._net.errors import HttpError
from pytest_chaos._net.messages import Reply, Request, parse_json
from pytest_chaos._net.routes import Params
from pytest_chaos.flags.errors import FlagConfigError
from pytest_chaos.flags.http import Refusal, Route
from pytest_chaos.flags.store import FlagStore

__all__ = ["AdminApi"]


@final
class AdminApi:
    """The admin routes of one store."""

    def __init__(self, store: FlagStore) -> None:
        self.store = store

    def routes(self) -> list[Route]:
        return [
            Route.of("/admin/flags", "admin", GET=self._list),
            Route.of("/admin/flags/{key}", "admin", PUT=self._put, DELETE=self._delete),
            Route.of("/admin/flags/{key}/enable", "admin", POST=self._enable),
            Route.of("/admin/flags/{key}/disable", "admin", POST=self._disable),
            Route.of("/admin/kill", "admin", POST=self._kill),
            Route.of("/admin/revive", "admin", POST=self._revive),
        ]

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = parse_json(request.body) if request.body.strip() else {}
        except HttpError as error:  # not JSON: its message says where and why
            raise Refusal(400, {"error": error.message}) from None
        if not isinstance(body, dict):
            raise Refusal(400, {"error": f"the body must be a JSON object, got {body!r}"})
        return body

    def _feature(self, key: str) -> dict[str, Any]:
        try:
            return self.store.unleash_feature(key)
        except KeyError:
            raise Refusal(404, {"error": f"no flag named {key!r}"}) from None

    def _flag_state(self, key: str) -> Reply:
        return Reply.json({**self._feature(key), "killed": self.store.killed(key)})

    async def _list(self, request: Request, params: Params) -> Reply:
        features = [self.store.unleash_feature(key) for key in self.store.names()]
        return Reply.json({"flags": features, "killed": self.store.killed()})

    async def _put(self, request: Request, params: Params) -> Reply:
        key = params["key"]
        feature = self._body(request)
        if feature.setdefault("name", key) != key:
            message = f"the feature's name {feature['name']!r} is not the key {key!r} in the path"
            raise Refusal(400, {"error": message})
        existed = key in self.store
        try:
            self.store.set_unleash(feature)
        except FlagConfigError as error:
            raise Refusal(400, {"error": str(error)}) from None
        return Reply.json(self.store.unleash_feature(key), 200 if existed else 201)

    async def _enable(self, request: Request, params: Params) -> Reply:
        key = params["key"]
        percentage = self._body(request).get("percentage")
        self._feature(key)
        if percentage is not None and (
            isinstance(percentage, bool) or not isinstance(percentage, (int, float))
        ):
            raise Refusal(400, {"error": f"percentage must be a number, got {percentage!r}"})
        try:
            self.store.enable(key, percentage)
        except FlagConfigError as error:
            raise Refusal(400, {"error": str(error)}) from None
        return self._flag_state(key)

    async def _disable(self, request: Request, params: Params) -> Reply:
        self._feature(params["key"])
        self.store.disable(params["key"])
        return self._flag_state(params["key"])

    async def _delete(self, request: Request, params: Params) -> Reply:
        self._feature(params["key"])
        self.store.remove(params["key"])
        return Reply(204)

    def _switch_target(self, request: Request) -> str | None:
        flag = self._body(request).get("flag")
        if flag is not None:
            if not isinstance(flag, str):
                raise Refusal(400, {"error": f"flag must be a flag's name, got {flag!r}"})
            self._feature(flag)
        return flag

    async def _kill(self, request: Request, params: Params) -> Reply:
        flag = self._switch_target(request)
        self.store.kill(flag)
        return Reply.json({"flag": flag, "killed": self.store.killed(flag)})

    async def _revive(self, request: Request, params: Params) -> Reply:
        flag = self._switch_target(request)
        self.store.revive(flag)
        return Reply.json({"flag": flag, "killed": self.store.killed(flag)})
