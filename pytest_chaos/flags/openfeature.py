"""An OpenFeature provider answering from a :class:`~pytest_chaos.flags.store.FlagStore`.

``api.set_provider(StoreProvider(store))`` lets code written against OpenFeature read the
store's flags with Unleash's bucketing. This module imports ``openfeature`` (the
``openfeature-sdk`` package); nothing else in pytest-chaos imports this module, so the SDK
is only needed by those who use the provider.

Values by type: boolean is the flag's on/off; string is the variant's name, or its payload
when the payload's type is ``string``; integer and float are the variant's payload parsed
as a number; object is the payload parsed as JSON (an object or an array). A payload that
cannot be the requested type answers the caller's default with ``TYPE_MISMATCH``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from pytest_chaos.flags.changes import Change
from pytest_chaos.flags.store import FlagStore

__all__ = ["PROVIDER_NAME", "StoreProvider", "TypeMismatch", "unleash_context"]

PROVIDER_NAME = "pytest-chaos"

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]

_FIELDS = frozenset(
    {"userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime"}
)
"""Unleash's top-level context fields; every other attribute goes into ``properties``."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})

_REASONS: dict[str, Reason] = {
    "STATIC": Reason.STATIC,
    "TARGETING_MATCH": Reason.TARGETING_MATCH,
    "SPLIT": Reason.SPLIT,
    "DISABLED": Reason.DISABLED,
    "DEFAULT": Reason.DEFAULT,
    "ERROR": Reason.ERROR,
}

_ERRORS: dict[str, ErrorCode] = {
    "FLAG_NOT_FOUND": ErrorCode.FLAG_NOT_FOUND,
    "TYPE_MISMATCH": ErrorCode.TYPE_MISMATCH,
    "GENERAL": ErrorCode.GENERAL,
}

Payload = Mapping[str, Any] | None
"""An Unleash variant payload, ``{"type": ..., "value": ...}``, or None when it has none."""

_AMBIGUOUS: Any = object()
"""A variant name with different payloads in different variant lists of one feature."""


class TypeMismatch(Exception):
    """The variant's payload cannot be the requested type."""


def _text(value: object) -> str:
    """An attribute as Unleash contexts hold values: a string."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def unleash_context(context: EvaluationContext | None) -> Mapping[str, Any]:
    """An OpenFeature evaluation context in Unleash's shape.

    ``targeting_key`` becomes ``userId``; the attributes ``userId``, ``sessionId``,
    ``remoteAddress``, ``environment``, ``appName`` and ``currentTime`` stay top-level
    fields; every other attribute (and the entries of a ``properties`` mapping) goes into
    ``properties``. Values become strings (booleans ``true``/``false``, datetimes ISO 8601).
    The targeting key wins over a ``userId`` attribute.
    """
    if context is None:
        return _EMPTY
    key = context.targeting_key
    attributes = context.attributes
    if not attributes:
        return {"userId": key} if key else _EMPTY
    result: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for name, value in attributes.items():
        if value is None:
            continue
        if name in _FIELDS:
            result[name] = value if value.__class__ is str else _text(value)
        elif name == "properties" and isinstance(value, Mapping):
            for inner, item in value.items():
                if item is not None:
                    properties[inner] = item if item.__class__ is str else _text(item)
        else:
            properties[name] = value if value.__class__ is str else _text(value)
    if key:
        result["userId"] = key
    if properties:
        result["properties"] = properties
    return result


def _payloads(feature: Mapping[str, Any]) -> dict[str, Any]:
    """Variant name to payload over the feature's and its strategies' variant lists."""
    lists = [feature.get("variants") or []]
    for strategy in feature.get("strategies") or []:
        if isinstance(strategy, Mapping):
            lists.append(strategy.get("variants") or [])
    table: dict[str, Any] = {}
    for variants in lists:
        for variant in variants if isinstance(variants, list) else []:
            if not isinstance(variant, Mapping) or "name" not in variant:
                continue
            name, payload = str(variant["name"]), variant.get("payload")
            if name in table and table[name] != payload:
                table[name] = _AMBIGUOUS
            else:
                table[name] = payload
    return table


def _number(payload: Payload) -> int | float:
    """The payload's value as a number: an int when it is written as one."""
    if payload is None:
        raise TypeMismatch("the variant has no payload")
    value = payload.get("value")
    if isinstance(value, bool):
        raise TypeMismatch(f"the payload {value!r} is not a number")
    if isinstance(value, int | float):
        number: int | float = value
    else:
        text = str(value).strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise TypeMismatch(f"the payload {value!r} is not a number") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise TypeMismatch(f"the payload {value!r} is not a finite number")
    return number


def _integer(_variant: str, payload: Payload) -> int:
    number = _number(payload)
    if isinstance(number, float):
        if not number.is_integer():
            raise TypeMismatch(f"the payload {number!r} is not an integer")
        return int(number)
    return number


def _float(_variant: str, payload: Payload) -> float:
    return float(_number(payload))


def _string(variant: str, payload: Payload) -> str:
    if payload is not None and payload.get("type") == "string":
        return str(payload.get("value"))
    return variant


def _object(_variant: str, payload: Payload) -> ObjectValue:
    if payload is None:
        raise TypeMismatch("the variant has no payload")
    value = payload.get("value")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise TypeMismatch(f"the payload {payload.get('value')!r} is not JSON") from None
    if not isinstance(value, dict | list):
        raise TypeMismatch(f"the payload {value!r} is not a JSON object or array")
    return value


class StoreProvider(AbstractProvider):
    """OpenFeature's view of a :class:`FlagStore`: ``api.set_provider(StoreProvider(store))``.

    Reasons are the store's (:meth:`FlagStore.evaluate`): ``STATIC``, ``TARGETING_MATCH``,
    ``SPLIT``, ``DISABLED``, ``DEFAULT``, ``ERROR``. A missing flag answers the caller's
    default with ``ERROR``/``FLAG_NOT_FOUND``; a payload that cannot be the requested type
    the default with ``ERROR``/``TYPE_MISMATCH``. For the non-boolean types, a flag that is
    on but chose no variant answers the default with reason ``DEFAULT``; a flag that is off
    answers the default with the store's reason (``DISABLED`` or ``DEFAULT``).

    From ``initialize`` (called by ``set_provider``) to ``shutdown``, every change to the
    store is emitted as ``PROVIDER_CONFIGURATION_CHANGED`` with ``flags_changed`` the
    changed flag's name (every flag's, for ``kill()``/``revive()`` of all).
    """

    def __init__(self, store: FlagStore) -> None:
        super().__init__()
        self._store = store
        self._metadata = Metadata(name=PROVIDER_NAME)
        self._unsubscribe: Callable[[], None] | None = None
        # two locks: listeners run under the store's lock and take ``_lock``, while
        # subscribing takes the store's lock, so it must not happen under ``_lock``
        self._subscription = threading.Lock()
        self._lock = threading.Lock()
        self._generation = 0
        self._payload_cache: dict[str, dict[str, Any]] = {}

    @property
    def store(self) -> FlagStore:
        """The store this provider answers from."""
        return self._store

    def get_metadata(self) -> Metadata:
        return self._metadata

    # --- lifecycle and events --------------------------------------------------------------

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Start emitting configuration-changed events for the store's changes."""
        with self._subscription:
            if self._unsubscribe is None:
                self._unsubscribe = self._store.listen(self._changed)

    def shutdown(self) -> None:
        """Stop listening to the store (a later ``initialize`` listens again)."""
        with self._subscription:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def _changed(self, change: Change) -> None:
        with self._lock:
            self._generation += 1
            self._payload_cache = {}
        names = [change.name] if change.name is not None else self._store.names()
        self.emit_provider_configuration_changed(ProviderEventDetails(flags_changed=names))

    # --- resolution ------------------------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        evaluation = self._store.evaluate(
            flag_key, unleash_context(evaluation_context), default_value
        )
        if evaluation.error_code is not None:
            return _error(flag_key, default_value, evaluation.error_code)
        # positional (value, error_code, error_message, reason, variant): the hot path
        return FlagResolutionDetails(
            evaluation.value,
            None,
            None,
            _REASONS.get(evaluation.reason, Reason.UNKNOWN),
            evaluation.variant,
        )

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, _string)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, _integer)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, _float)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        return self._resolve(flag_key, default_value, evaluation_context, _object)

    def _resolve(
        self,
        flag_key: str,
        default_value: T,
        evaluation_context: EvaluationContext | None,
        convert: Callable[[str, Payload], T],
    ) -> FlagResolutionDetails[T]:
        """A variant-valued answer: the chosen variant converted by ``convert``."""
        context = unleash_context(evaluation_context)
        evaluation = self._store.evaluate(flag_key, context)
        if evaluation.error_code is not None:
            return _error(flag_key, default_value, evaluation.error_code)
        variant = evaluation.variant
        if variant is None:
            reason = Reason.DEFAULT if evaluation.value else _REASONS[evaluation.reason]
            return FlagResolutionDetails(value=default_value, reason=reason)
        try:
            value = convert(variant, self._payload(flag_key, variant, context))
        except TypeMismatch as mismatch:
            return FlagResolutionDetails(
                value=default_value,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"flag {flag_key!r} variant {variant!r}: {mismatch}",
                variant=variant,
            )
        return FlagResolutionDetails(
            value=value,
            reason=_REASONS.get(evaluation.reason, Reason.UNKNOWN),
            variant=variant,
        )

    def _payload(self, flag_key: str, variant: str, context: Mapping[str, Any]) -> Payload:
        """The payload of ``variant`` of ``flag_key``, from a table rebuilt after changes."""
        table = self._payload_cache.get(flag_key)
        if table is None:
            generation = self._generation
            try:
                table = _payloads(self._store.unleash_feature(flag_key))
            except KeyError:  # removed since it was evaluated
                return None
            with self._lock:
                if generation == self._generation:
                    self._payload_cache = {**self._payload_cache, flag_key: table}
        payload = table.get(variant)
        if payload is _AMBIGUOUS:
            chosen = self._store.get_variant(flag_key, context)
            if chosen.get("name") == variant:
                return chosen.get("payload")
            return None
        return payload if isinstance(payload, Mapping) else None


def _error(flag_key: str, default_value: T, code: str) -> FlagResolutionDetails[T]:
    """The caller's default with reason ERROR and the store's error code."""
    if code == "FLAG_NOT_FOUND":
        message = f"flag {flag_key!r} not found"
    else:
        message = f"evaluating flag {flag_key!r} failed ({code})"
    return FlagResolutionDetails(
        value=default_value,
        reason=Reason.ERROR,
        error_code=_ERRORS.get(code, ErrorCode.GENERAL),
        error_message=message,
    )
