"""Code under test for the capture's tests: a client library, outside any test module, so
its requests are a dependency's."""

import httpx


def fetch(url: str) -> int:
    return httpx.get(url, timeout=2).status_code


async def fetch_async(url: str) -> int:
    async with httpx.AsyncClient(timeout=2) as client:
        return (await client.get(url)).status_code
