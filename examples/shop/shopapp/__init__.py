"""A small web shop and its payments service, the system under test of the shop's chaos suite."""
