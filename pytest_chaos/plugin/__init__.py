"""The pytest plugin (the ``pytest11`` entry point ``chaos``): every module of the package that
imports pytest lives in this folder. Below it, nothing imports pytest.

``hooks`` wires options, the marker, reports and xdist; each feature's fixtures are a module
of ``fixtures``; the rest (settings, markers, outcomes, evidence, Allure, progress, session,
the Chaos Toolkit collector) are what the hooks and fixtures hand work to."""

pytest_plugins = [
    "pytest_chaos.plugin.hooks",
    "pytest_chaos.plugin.session",
    "pytest_chaos.plugin.fixtures.toxiproxy",
    "pytest_chaos.plugin.fixtures.services",
    "pytest_chaos.plugin.fixtures.monkey",
    "pytest_chaos.plugin.fixtures.chaos",
    "pytest_chaos.plugin.fixtures.canary",
    "pytest_chaos.plugin.fixtures.flags",
    "pytest_chaos.plugin.fixtures.explore",
    "pytest_chaos.plugin.explore",
]
