"""Network faults: a Toxiproxy-compatible engine, its HTTP API, and clients for any server."""
