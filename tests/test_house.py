"""The house rules that a reader cannot see from one file: one exception root, a facade
whose every public name resolves, and every module small enough to read (CONTRIBUTING.md)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import pytest_chaos
from pytest_chaos.core.errors import ChaosError, ChaosInterrupt

PACKAGE = Path(pytest_chaos.__file__).parent
#: A module this long or longer must say in its docstring why it is not split.
MAX_LINES = 600


def every_module() -> list[ModuleType]:
    names = [info.name for info in pkgutil.walk_packages(pytest_chaos.__path__, "pytest_chaos.")]
    return [importlib.import_module(name) for name in names]


def test_every_exception_class_of_the_package_is_a_chaos_error() -> None:
    classes = {
        obj
        for module in every_module()
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__.startswith("pytest_chaos")
    }
    assert len(classes) > 30  # the walk found them
    roots = (ChaosError, ChaosInterrupt)
    assert [cls.__qualname__ for cls in classes if not issubclass(cls, roots)] == []


def test_the_interrupts_get_past_except_exception() -> None:
    """The one other root: what pytest-chaos raises to stop code under test (a hung
    exploration run) is no Exception, so that code's ``except Exception`` lets it by."""
    from pytest_chaos.explore.hang import Hung

    assert issubclass(Hung, ChaosInterrupt) and not issubclass(ChaosInterrupt, Exception)
    with pytest.raises(Hung):
        try:
            raise Hung(1.0, "here", "stack")
        except Exception:  # the code under test's catch-all
            pytest.fail("a catch-all swallowed the interrupt")


@pytest.mark.parametrize(
    ("name", "also"),
    [
        ("ServiceError", RuntimeError),
        ("ReadinessError", RuntimeError),
        ("ToxiproxyError", Exception),
    ],
)
def test_the_root_keeps_the_bases_users_catch(name: str, also: type[BaseException]) -> None:
    cls = getattr(pytest_chaos, name)
    assert issubclass(cls, ChaosError) and issubclass(cls, also)


def test_bad_input_errors_are_still_value_errors() -> None:
    from pytest_chaos.experiment import Deviated
    from pytest_chaos.gameday import PlanError
    from pytest_chaos.plugin.markers import MarkerError

    assert issubclass(PlanError, ValueError) and issubclass(MarkerError, ValueError)
    assert issubclass(Deviated, AssertionError)  # a deviation fails the test


def test_every_public_name_of_the_facade_resolves() -> None:
    for name in pytest_chaos.__all__:
        assert getattr(pytest_chaos, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_thing"):
        pytest_chaos.no_such_thing  # noqa: B018


def test_the_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    assert pytest_chaos.__version__ == version("pytest-chaos")


def test_modules_past_the_limit_say_why() -> None:
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) < MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if "not split" not in docstring:
            unexplained.append(str(path.relative_to(PACKAGE)))
    assert unexplained == [], f"{MAX_LINES} lines or more without saying why: {unexplained}"
