"""The shop's feature flags, read over OFREP with the OpenFeature SDK.

``live-payments`` is an operational kill switch: when it is off, orders are taken without
charging (they wait for payment). When the flag server cannot be reached, or does not know
the flag, the default applies: payments stay on.
"""

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider


class Flags:
    def __init__(self, ofrep_url: str | None, *, timeout: float = 0.3) -> None:
        if ofrep_url:
            api.set_provider(OFREPProvider(ofrep_url, timeout=timeout), domain="shop")
        self.client = api.get_client(domain="shop")  # no provider: every flag its default

    def live_payments(self) -> bool:
        return self.client.get_boolean_value("live-payments", True)
