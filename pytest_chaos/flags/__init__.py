"""Feature flags: a store that buckets users exactly like Unleash, an OpenFeature provider, and an OFREP server to break."""
