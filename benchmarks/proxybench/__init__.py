"""Helpers of ``benchmarks/proxy_vs_toxiproxy.py``: loopback servers (``servers``), the
blocking-socket client (``client``), proxy server processes and their HTTP API
(``proxies``), the workloads (``workloads``) and the printed report (``report``)."""
