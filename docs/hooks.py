"""MkDocs hooks of the documentation site: reference tables generated from the code, and
links to files outside ``docs/`` that still resolve in a strict build.

Markers on a page (an HTML comment alone on its line) are replaced at build time:

- ``<!-- reference:options -->``: every option of ``pytest_chaos.plugin.settings.OPTIONS``, with
  its command line flag, ini key, environment variable and help;
- ``<!-- reference:marker -->``: the ``chaos`` marker's arguments (``markers.ALLOWED``);
- ``<!-- reference:fixtures -->``: the fixtures of the plugin's modules
  (``pytest_chaos.plugin.pytest_plugins``, read with ``ast``: name, scope, what they use,
  docstring);
- ``<!-- reference:hooks -->``: the hook specifications of ``pytest_chaos/plugin/hookspecs.py``;
- ``<!-- reference:toxics -->``: the toxic types of the proxy (``proxy.registry.REGISTRY``)
  with their attributes, defaults and behaviour, and the proxy handle's method for each;
- ``<!-- reference:faults -->``: the fault descriptions of ``pytest_chaos.faults``;
- ``<!-- reference:cli -->``: the ``pytest-chaos`` command (``pytest_chaos.cli.parser()``);
- ``<!-- reference:proxy-cli -->``: ``python -m pytest_chaos.proxy``;
- ``<!-- reference:explore-catalogue -->``: the explorer's faults
  (``pytest_chaos.explore.catalogue.CATALOGUE``).

An unknown marker, or a marker whose source cannot be read (say the CLI does not import),
fails the build with a message that says which and why; the error is raised at the end of
the build, so every other page is still built and checked.

Links from a page to a file of the repository outside ``docs/`` (``../BENCHMARKS.md``,
``../tests/proxy/test_behaviour.py``) keep working on GitHub as they are, and are rewritten
for the site: ``BENCHMARKS.md`` becomes a page of the site, other files are copied into
the site under ``source/`` (folders get a page listing their files). A link to a file that
does not exist is left alone, so ``--strict`` still reports it.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import logging
import posixpath
import re
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.pytest_chaos")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
PACKAGE = ROOT / "pytest_chaos"

#: Files outside docs/ that become pages of the site, and the page each becomes.
REPO_PAGES = {"BENCHMARKS.md": "benchmarks.md", "README.md": "readme.md"}
#: Repository pages the site has whether or not a page links to them (they are in the nav).
ALWAYS = {"BENCHMARKS.md"}
#: Where other files of the repository are copied into the site.
SOURCE_PREFIX = "source"

MARKER = re.compile(r"^<!-- reference:([a-z-]+) -->[ \t]*$", re.M)

#: What each argument of the ``chaos`` marker means. Every name in ``markers.ALLOWED`` must
#: be here (the build fails otherwise), so a new argument cannot go undocumented.
MARKER_ARGS = {
    "weight": (
        "`1`",
        "an integer from 1 to 10: how much the test counts in the resilience score",
    ),
    "hypothesis": ("`None`", "a non-empty string: what must hold while the faults are on"),
    "tags": ("`()`", "a string or a list of strings, to group tests"),
    "steady_state": (
        "`()`",
        "probes (`pytest_chaos.probes`): the steady-state hypothesis; with it (or `faults`) "
        "the test body runs as the method of an experiment",
    ),
    "faults": (
        "`()`",
        "fault descriptions (`pytest_chaos.faults`) applied while the body runs",
    ),
    "load": ("`None`", "a load (`chaos.load.http(...)` and friends) that runs meanwhile"),
    "strategy": (
        "`'default'`",
        "when the hypothesis is checked: `default`, `before`, `after`, `during`, `continuously`",
    ),
    "halt": ("`()`", "probes that stop the experiment at once when breached"),
    "frequency_s": ("`0.5`", "how often the hypothesis and halt probes are checked meanwhile"),
    "explore": (
        "`None`",
        "`True` (explore the test on every run), `False` (never explore it), or "
        "`{dependency: {fault: expect(...)}}` (what a fault may make it do; see "
        "[exploration](explore.md#declared-expectations))",
    ),
}

#: The proxy handle's method for each toxic type.
TOXIC_METHODS = {
    "latency": "latency",
    "bandwidth": "bandwidth",
    "slow_close": "slow_close",
    "timeout": "timeout",
    "reset_peer": "reset_peer",
    "slicer": "slicer",
    "limit_data": "limit_data",
    "noop": None,
    "blackhole": "blackhole",
    "http_status": "http_status",
    "http_latency": "http_latency",
    "http_truncate": "http_truncate",
}
#: Units of toxic attributes (Toxiproxy's are all non-negative integers).
UNITS = {
    ("latency", "latency"): "ms",
    ("latency", "jitter"): "ms",
    ("bandwidth", "rate"): "KB/s, 1 KB = 1000 bytes",
    ("slow_close", "delay"): "ms",
    ("timeout", "timeout"): "ms",
    ("reset_peer", "timeout"): "ms",
    ("slicer", "average_size"): "bytes",
    ("slicer", "size_variation"): "bytes",
    ("slicer", "delay"): "**microseconds**",
    ("limit_data", "bytes"): "bytes",
    ("http_status", "status"): "an HTTP status, 100 to 599",
    ("http_status", "retry_after"): "seconds; 0: no header",
    ("http_status", "percent"): "0 to 100",
    ("http_latency", "latency"): "ms",
    ("http_truncate", "bytes"): "bytes of the body",
}

_errors: list[str] = []


# -- events -------------------------------------------------------------------------------


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    _errors.clear()
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the repository's pages that the site needs (BENCHMARKS.md always; README.md when
    a page links to it) and copy the other repository files that pages link to."""
    wanted = set(ALWAYS)
    for file in list(files):
        if file.is_documentation_page() and file.abs_src_path:
            text = Path(file.abs_src_path).read_text(encoding="utf-8")
            _rewrite_links(text, file.src_uri, file.src_uri, files, config, wanted)
    done: set[str] = set()
    while wanted - done:
        source = sorted(wanted - done)[0]
        done.add(source)
        page = REPO_PAGES[source]
        text = (ROOT / source).read_text(encoding="utf-8")
        text = _rewrite_links(text, source, page, files, config, wanted)
        files.append(File.generated(config, page, content=text))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    markdown = _rewrite_links(markdown, page.file.src_uri, page.file.src_uri, files, config, set())
    return MARKER.sub(lambda match: _reference(match.group(1), page.file.src_uri), markdown)


def on_post_build(config: MkDocsConfig) -> None:
    if _errors:
        raise PluginError("the generated reference could not be built:\n  " + "\n  ".join(_errors))


# -- links outside docs/ --------------------------------------------------------------------

_LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def _rewrite_links(
    text: str, origin: str, page: str, files: Files, config: MkDocsConfig, wanted: set[str]
) -> str:
    """Rewrite links of ``text`` (the file ``origin``, relative to the repository root for a
    repository page, else to docs/) to targets outside docs/, as the site serves them from
    ``page``; copy the files they need into ``files``, and add the repository pages they
    need to ``wanted``."""
    in_docs = origin not in REPO_PAGES

    def one(match: re.Match[str]) -> str:
        url = match.group(2)
        if re.match(r"[a-z][a-z0-9+.-]*:|#|/", url):
            return match.group(0)
        path, sep, anchor = url.partition("#")
        base = posixpath.dirname(origin)
        joined = posixpath.normpath(posixpath.join(base, path))
        if in_docs:
            if not joined.startswith("../"):
                return match.group(0)
            repo_path = joined[3:]
        else:
            if joined == "docs" or joined.startswith("docs/"):  # a repository page into docs/
                target = joined[len("docs/") :] or "index.md"
                return match.group(1) + _relative(target, page) + sep + anchor + ")"
            repo_path = joined
        if repo_path.startswith("../") or not (ROOT / repo_path).exists():
            return match.group(0)  # left for --strict to report
        if repo_path in REPO_PAGES:
            wanted.add(repo_path)
            target = REPO_PAGES[repo_path]
        else:
            target = _copy_into_site(repo_path, files, config)
        return match.group(1) + _relative(target, page) + sep + anchor + match.group(3)

    return _LINK.sub(one, text)


def _relative(target: str, page: str) -> str:
    return posixpath.relpath(target, posixpath.dirname(page) or ".")


def _copy_into_site(repo_path: str, files: Files, config: MkDocsConfig) -> str:
    """The site path of the repository file or folder ``repo_path``, added to ``files``."""
    source = ROOT / repo_path
    if source.is_dir():
        folder = repo_path.rstrip("/")
        uri = _site_path(folder) + "/index.md"
        if files.get_file_from_path(uri) is None:
            index = File.generated(config, uri, content="")  # claimed before recursing
            files.append(index)
            entries = sorted(
                p
                for p in source.iterdir()
                if not p.name.startswith((".", "__pycache__")) and p.suffix != ".pyc"
            )
            lines = []
            for entry in entries:
                target = _copy_into_site(f"{folder}/{entry.name}", files, config)
                lines.append(
                    f"- [{entry.name}{'/' if entry.is_dir() else ''}]({_relative(target, uri)})"
                )
            listing = "\n".join(lines)
            content = f"# {folder}/\n\nThe repository's `{folder}/` folder:\n\n{listing}\n"
            index.content_string = content
        return uri
    uri = _site_path(repo_path)
    if files.get_file_from_path(uri) is None:
        files.append(File.generated(config, uri, abs_src_path=str(source)))
    return uri


def _site_path(repo_path: str) -> str:
    """Where a repository file is copied: under ``source/``, hidden folders (``.ci``) made
    visible (``_ci``, as MkDocs leaves out dot files), Markdown kept as text, not a page."""
    parts = ["_" + part[1:] if part.startswith(".") else part for part in repo_path.split("/")]
    path = "/".join([SOURCE_PREFIX, *parts])
    return path + ".txt" if path.endswith(".md") else path


# -- the generated reference ----------------------------------------------------------------


def _reference(name: str, page: str) -> str:
    render = RENDERERS.get(name)
    if render is None:
        _errors.append(f"{page}: unknown marker <!-- reference:{name} -->")
        return f"**(unknown reference `{name}`)**"
    try:
        return render()
    except Exception as error:
        _errors.append(f"{page}: reference:{name}: {type(error).__name__}: {error}")
        return f"**(reference `{name}` could not be generated: {type(error).__name__})**"


def _cell(text: str) -> str:
    """Text for one table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = list(head)
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _docstring(text: str | None) -> str:
    return " ".join(inspect.cleandoc(text or "").split())


def options_reference() -> str:
    settings = importlib.import_module("pytest_chaos.plugin.settings")
    rows = []
    for option in settings.OPTIONS:
        flag = f"`{option.cli}`" if option.flag else f"`{option.cli} VALUE`"
        if option.repeatable:
            flag += " (repeatable)"
        rows.append((flag, f"`{option.ini}`", f"`{option.env}`", option.help))
    return _table(("command line", "ini key", "environment variable", "meaning"), rows)


def marker_reference() -> str:
    markers = importlib.import_module("pytest_chaos.plugin.markers")
    missing = [name for name in markers.ALLOWED if name not in MARKER_ARGS]
    if missing:
        raise ValueError(f"marker arguments without a description in docs/hooks.py: {missing}")
    rows = [(f"`{name}`", *MARKER_ARGS[name]) for name in markers.ALLOWED]
    return (
        f"`@pytest.mark.{markers.MARKER}(...)`, as `pytest --markers` shows it:\n\n"
        f"```text\n@pytest.mark.{markers.MARKER_HELP}\n```\n\n"
        + _table(("argument", "default", "allowed"), rows)
    )


def fixtures_reference() -> str:
    plugin = importlib.import_module("pytest_chaos.plugin")
    sources = [
        (PACKAGE.parent / (name.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        for name in plugin.pytest_plugins
    ]
    rows = []
    for node in (node for source in sources for node in ast.parse(source).body):
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        scope = _fixture_scope(node)
        if scope is None:
            continue
        uses = [arg.arg for arg in node.args.args if arg.arg not in ("request", "tmp_path_factory")]
        rows.append(
            (
                f"`{node.name}`",
                scope,
                ", ".join(f"`{name}`" for name in uses) or "",
                _docstring(ast.get_docstring(node)),
            )
        )
    if not rows:
        raise ValueError("no fixture found in the modules of pytest_chaos.plugin.pytest_plugins")
    return _table(("fixture", "scope", "uses", "what it gives"), rows)


def _fixture_scope(node: ast.FunctionDef) -> str | None:
    """The scope of a ``@pytest.fixture`` function, or None for another function."""
    for decorator in node.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call is not None else decorator
        if ast.unparse(target) not in ("pytest.fixture", "fixture"):
            continue
        for keyword in call.keywords if call is not None else []:
            if keyword.arg == "scope" and isinstance(keyword.value, ast.Constant):
                return str(keyword.value.value)
        return "function"
    return None


def hooks_reference() -> str:
    hookspecs = importlib.import_module("pytest_chaos.plugin.hookspecs")
    rows = []
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("pytest_chaos_"):
            continue
        arguments = ", ".join(inspect.signature(function).parameters)
        rows.append((f"`{name}({arguments})`", _docstring(function.__doc__)))
    return _table(("hook", "called when"), rows)


def toxics_reference() -> str:
    registry = importlib.import_module("pytest_chaos.proxy.registry")
    client = importlib.import_module("pytest_chaos.proxy.client")
    rows = []
    for type_name, cls in registry.REGISTRY.items():
        attributes = ", ".join(
            [
                f"`{attribute}` ({UNITS.get((type_name, attribute), 'integer')}, default {default})"
                for attribute, default in cls.attribute_defaults.items()
            ]
            + [f'`{attribute}` (text, default "")' for attribute in cls.text_defaults]
        )
        if type_name not in TOXIC_METHODS:
            raise ValueError(f"toxic type {type_name!r} is missing from docs/hooks.py")
        method_name = TOXIC_METHODS[type_name]
        if method_name is None:
            method = f'`add_toxic("{type_name}")`'
        else:
            function = getattr(client.Proxy, method_name)
            method = f"`{method_name}{_signature(function, drop=('self', 'options'))}`"
        behaviour = _docstring(cls.__doc__) or "passes data unchanged"
        rows.append((f"`{type_name}`", attributes or "none", method, behaviour))
    return _table(("type", "attributes", "proxy handle method", "behaviour"), rows)


def _signature(function: Callable[..., object], drop: tuple[str, ...] = ()) -> str:
    """``function``'s parameters as a call shows them: names and defaults, no annotations."""
    parameters = [
        parameter.replace(annotation=inspect.Parameter.empty)
        for parameter in inspect.signature(function).parameters.values()
        if parameter.name not in drop
    ]
    return str(inspect.Signature(parameters))


def faults_reference() -> str:
    faults = importlib.import_module("pytest_chaos.faults")
    rows = []
    for name in faults.__all__:
        function = getattr(faults, name)
        if not inspect.isfunction(function) or name == "ignore_fault":
            continue
        rows.append((f"`faults.{name}{_signature(function)}`", _docstring(function.__doc__)))
    return _table(("description", "does"), rows)


def cli_reference() -> str:
    cli = importlib.import_module("pytest_chaos.cli")
    return _parser_reference(cli.parser(), "pytest-chaos", level=3)


def proxy_cli_reference() -> str:
    main = importlib.import_module("pytest_chaos.proxy.__main__")
    return _parser_reference(
        main.build_parser(), "python -m pytest_chaos.proxy (or pytest-chaos proxy)", level=3
    )


def _parser_reference(parser: argparse.ArgumentParser, title: str, level: int) -> str:
    parser.formatter_class = _wide_formatter
    usage = parser.format_usage().strip().removeprefix("usage: ")
    parts = [f"{'#' * level} `{title}`\n"]
    if parser.description:
        parts.append(textwrap.fill(parser.description, 100) + "\n")
    parts.append(f"```text\n{usage}\n```\n")
    rows = []
    commands: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands += [(f"{title} {name}", sub) for name, sub in action.choices.items()]
            continue
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        metavar = (
            action.metavar if isinstance(action.metavar, str | None) else " ".join(action.metavar)
        )
        spelling = ", ".join(action.option_strings) or metavar or action.dest
        if action.option_strings and action.nargs != 0:
            spelling += f" {metavar or action.dest.upper()}"
        default = action.default
        shown = "" if default in (None, False, argparse.SUPPRESS) else f"`{default}`"
        rows.append((f"`{spelling}`", action.help or "", shown))
    if rows:
        parts.append(_table(("argument", "meaning", "default"), rows))
    for name, sub in commands:
        parts.append(_parser_reference(sub, name, min(level + 1, 6)))
    return "\n".join(parts)


def _wide_formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, width=100)


def explore_catalogue_reference() -> str:
    from pytest_chaos.explore.catalogue import CATALOGUE

    applies = {
        "link": "a proxy",
        "http-link": "a proxy that carried HTTP",
        "http": "an HTTP endpoint (httpx, in process)",
        "process": "a process or container of `service`",
    }
    rows = [(f"`{kind.id}`", applies[kind.applies_to], kind.summary) for kind in CATALOGUE]
    rows.append(("each registered exception", "a call site", "every call raises it"))
    return _table(("fault", "on", "what it does"), rows)


RENDERERS: dict[str, Callable[[], str]] = {
    "options": options_reference,
    "marker": marker_reference,
    "fixtures": fixtures_reference,
    "hooks": hooks_reference,
    "toxics": toxics_reference,
    "faults": faults_reference,
    "cli": cli_reference,
    "proxy-cli": proxy_cli_reference,
    "explore-catalogue": explore_catalogue_reference,
}


def generated(name: str) -> str:
    """The Markdown that replaces ``<!-- reference:NAME -->`` (for tests)."""
    return RENDERERS[name]()


__all__ = ["generated", "on_config", "on_files", "on_page_markdown", "on_post_build"]
