"""An OpenFeature provider answering from a :class:`~pytest_chaos.flags.store.FlagStore`.

``api.set_provider(StoreProvider(store))`` lets code written against OpenFeature read the
store's flags with Unleash's bucketing. This module imports ``openfeature`` (the
``openfeature-sdk`` package); nothing else in pytest-chaos imports this module, so the SDK
is only needed by those who use the provider.

Values by type: a flag without variants is a boolean flag, its value on/off (variant
``enabled``/``disabled``); a flag with variants has the chosen variant's value typed by
its payload (``payloads.typed_value``: what the OFREP server sends too), read as a
string, integer, float or object, and a value of another type (a boolean included)
answers the caller's default with ``TYPE_MISMATCH``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast, final

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from pytest_chaos.flags.changes import Change
from pytest_chaos.flags.contexts import StrictContext, to_unleash
from pytest_chaos.flags.payloads import REQUESTED, typed_value
from pytest_chaos.flags.store import FlagStore

__all__ = ["PROVIDER_NAME", "StoreProvider", "unleash_context"]

PROVIDER_NAME = "pytest-chaos"

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]

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
    "TARGETING_KEY_MISSING": ErrorCode.TARGETING_KEY_MISSING,
    "TYPE_MISMATCH": ErrorCode.TYPE_MISMATCH,
    "GENERAL": ErrorCode.GENERAL,
}

Payload = Mapping[str, Any] | None
"""An Unleash variant payload, ``{"type": ..., "value": ...}``, or None when it has none."""


def unleash_context(context: EvaluationContext | None) -> StrictContext:
    """An OpenFeature evaluation context in Unleash's shape (see ``contexts.to_unleash``).

    ``targeting_key`` becomes ``userId``; the attributes ``userId``, ``sessionId``,
    ``remoteAddress``, ``environment``, ``appName`` and ``currentTime`` stay top-level
    fields; every other attribute (and the entries of a ``properties`` mapping) goes into
    ``properties``. Values become strings (booleans ``true``/``false``, datetimes ISO 8601,
    structures compact JSON). The targeting key wins over a ``userId`` attribute.
    """
    if context is None:
        return StrictContext()
    return to_unleash(context.targeting_key, context.attributes)


@final
class StoreProvider(AbstractProvider):
    """OpenFeature's view of a :class:`FlagStore`: ``api.set_provider(StoreProvider(store))``.

    Reasons are the store's (:meth:`FlagStore.evaluate`): ``STATIC``, ``TARGETING_MATCH``,
    ``SPLIT``, ``DISABLED``, ``DEFAULT``, ``ERROR``. A missing flag answers the caller's
    default with ``ERROR``/``FLAG_NOT_FOUND``; a value (typed by the payload) of another
    type the default with ``ERROR``/``TYPE_MISMATCH``; a flag whose answer would hang on a
    random identifier, because the context lacks the targeting key or the stickiness field,
    the default with ``ERROR``/``TARGETING_KEY_MISSING``, as the OFREP server answers. For the non-boolean types, a flag that is
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
        self._subscription = threading.Lock()

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
        names = [change.name] if change.name is not None else self._store.names()
        self.emit_provider_configuration_changed(ProviderEventDetails(flags_changed=names))

    # --- resolution ------------------------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        if self._store.has_variants(flag_key):  # its value is a variant's, as over OFREP
            return self._resolve(flag_key, default_value, evaluation_context, "boolean")
        evaluation = self._store.evaluate(
            flag_key, unleash_context(evaluation_context), default_value, identifier_required=True
        )
        if evaluation.error_code is not None:
            return _error(flag_key, default_value, evaluation.error_code)
        # positional (value, error_code, error_message, reason, variant): the hot path
        return FlagResolutionDetails(
            evaluation.value,
            None,
            None,
            _REASONS.get(evaluation.reason, Reason.UNKNOWN),
            "enabled" if evaluation.value else "disabled",
        )

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, "string")

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, "integer")

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, "float")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        return self._resolve(flag_key, default_value, evaluation_context, "object")

    def _resolve(
        self,
        flag_key: str,
        default_value: T,
        evaluation_context: EvaluationContext | None,
        kind: str,
    ) -> FlagResolutionDetails[T]:
        """The flag's value (a variant's, typed by its payload; on/off for a flag without
        variants) if it is of the requested ``kind``, checked as the OFREP provider checks."""
        context = unleash_context(evaluation_context)
        evaluation = self._store.evaluate(flag_key, context, identifier_required=True)
        if evaluation.error_code is not None:
            return _error(flag_key, default_value, evaluation.error_code)
        variant: str | None = evaluation.variant
        value: Any
        if variant is not None:
            value = typed_value(variant, evaluation.payload)
        elif self._store.has_variants(flag_key):  # none chosen: the caller's default
            reason = Reason.DEFAULT if evaluation.value else _REASONS[evaluation.reason]
            return FlagResolutionDetails(value=default_value, reason=reason, variant="disabled")
        else:  # Python's bool is an int: an integer request takes it, as over OFREP
            variant, value = ("enabled" if evaluation.value else "disabled"), evaluation.value
        if not isinstance(value, REQUESTED[kind]):
            return FlagResolutionDetails(
                value=default_value,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"flag {flag_key!r} variant {variant!r}: {value!r} is not {kind}",
                variant=variant,
            )
        return FlagResolutionDetails(
            value=cast(T, value),
            reason=_REASONS.get(evaluation.reason, Reason.UNKNOWN),
            variant=variant,
        )


def _error(flag_key: str, default_value: T, code: str) -> FlagResolutionDetails[T]:
    """The caller's default with reason ERROR and the store's error code."""
    if code == "FLAG_NOT_FOUND":
        message = f"flag {flag_key!r} not found"
    elif code == "TARGETING_KEY_MISSING":
        message = (
            f"flag {flag_key!r} hashes on an identifier this context lacks (a targeting key, "
            "or the stickiness field); Unleash would answer at random"
        )
    else:
        message = f"evaluating flag {flag_key!r} failed ({code})"
    return FlagResolutionDetails(
        value=default_value,
        reason=Reason.ERROR,
        error_code=_ERRORS.get(code, ErrorCode.GENERAL),
        error_message=message,
    )
