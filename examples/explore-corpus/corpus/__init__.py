"""The exploration corpus: small services with resilience bugs planted on purpose, and
dependencies whose failures are handled; see the README."""
