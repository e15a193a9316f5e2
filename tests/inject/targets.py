"""A small real module for the patch tests to aim at by dotted path
(``tests.inject.targets.charge``): module functions, an async one, a class with plain,
static, class and async methods, a subclass that inherits them, and a value that is not
callable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

#: Not a function: patching it must be refused.
CURRENCY = "EUR"


def charge(amount: int, currency: str = CURRENCY) -> str:
    return f"charged {amount} {currency}"


async def charge_async(amount: int) -> str:
    await asyncio.sleep(0)
    return f"charged {amount} async"


def checkout(amount: int) -> str:
    """Code under test: looks ``charge`` up in this module at each call, so a patch of
    ``tests.inject.targets.charge`` reaches it."""
    return "receipt: " + charge(amount)


async def ticker() -> AsyncIterator[int]:
    """An async generator function: the monkey must refuse to patch it."""
    yield 1


class Gateway:
    """A payment gateway with one method of each kind."""

    def __init__(self, name: str = "main") -> None:
        self.name = name

    def charge(self, amount: int) -> str:
        return f"{self.name} charged {amount}"

    async def refund(self, amount: int) -> str:
        await asyncio.sleep(0)
        return f"{self.name} refunded {amount}"

    @staticmethod
    def fee(amount: int) -> int:
        return amount // 100

    @classmethod
    def create(cls, name: str) -> Gateway:
        return cls(name)


class BackupGateway(Gateway):
    """Inherits every method of Gateway without defining any of its own."""
