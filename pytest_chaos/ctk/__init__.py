"""Chaos Toolkit, both ways: its vocabulary for pytest-chaos's experiments (hypothesis and
rollback strategies, activities its library accepts in a journal), and its experiment files
run under pytest (:mod:`pytest_chaos.ctk.files`)."""
