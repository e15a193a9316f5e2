"""The documentation site: ``mkdocs build --strict`` passes, its reference is generated from
the code, and every Python block of every page in docs/ is executed by some test; so is
every Python block of the repository's other Markdown that users read, the README and the
examples' READMEs (:data:`REPOSITORY_PAGES`), which are audited as pages too.

A Python block is executed in one of these ways:

- it is a complete test file (it starts with an import and defines ``def test_``): the
  page's own test runs it (``examples_test("page.md")`` or ``complete_examples("page.md")``
  in a test module), or, for a page without one, :func:`test_uncovered_examples_run` here;
- it is a fragment that another test executes, listed in :data:`EXECUTED_ELSEWHERE` with
  the test module that does it;
- it is a signature listing, ``Name(param=default, ...)`` under a
  ``<!-- signature: dotted.path -->`` comment (``dotted.path, except name, ...`` for
  parameters the page leaves out on purpose): :func:`test_signature_listings_match_the_code`
  compares its parameters and defaults with the code's;
- it lists hooks, ``def pytest_chaos_...(args): ...``:
  :func:`test_hook_listings_match_the_hookspecs` compares them with the hook specifications;
- any other block is a fragment, and :func:`test_the_fragments_run` runs it, all of them in
  one pytest process with ``tests/docs/support.py`` as a plugin (the reader's services and
  files, as fixtures). A ``<!-- setup: CODE -->`` comment right above a block (MkDocs does not
  render it) gives what the fragment takes for granted:

  - a block that defines tests (``def test_`` at its top level) is a test file without its
    head: the setup (its imports, say) and the block make the module;
  - a block whose first line is ``# conftest.py`` is a conftest.py, in a folder of its own,
    and its setup the test module beside it that exercises it;
  - any other block is the body of a test, after its setup; the names the two use but do
    not define are the test's arguments: its fixtures (``toxiproxy``, ``service``...).

  Fragments that need a container engine ask for ``container_image``, and skip without one
  (fail with PYTEST_CHAOS_REQUIRE_CONTAINERS=1); those that listen on a fixed port ask for
  ``fixed_ports``, which runs one at a time on the machine.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import symtable
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .servers import ROOT, isolate_chaos_env

DOCS = ROOT / "docs"
TESTS = ROOT / "tests"
#: Markdown outside docs/ that users read, audited like its pages, named from the root.
REPOSITORY_PAGES = (
    "README.md",
    *sorted(path.relative_to(ROOT).as_posix() for path in ROOT.glob("examples/*/README.md")),
)
#: A fenced Python block, at any indentation (inside a list item, say).
BLOCK = re.compile(r"^( *)```(?:python3?|py)\n(.*?)^\1```", re.S | re.M)
#: The comment right above a block that says how to run it.
DIRECTIVE = re.compile(r"<!--\s*(setup|signature):(.*)-->\Z", re.S)

#: Fragments that another test executes: (page, first line) -> the test module doing it.
EXECUTED_ELSEWHERE = {
    (
        "inject-retry-recipe.md",
        '"""The shop\'s order client: code under test that retries with tenacity.',
    ): "tests/inject/test_retry_recipe.py",
    ("inject-retry-recipe.md", "@dataclass"): "tests/inject/test_retry_recipe.py",
    ("flags.md", "from pytest_chaos import FlagStore"): "tests/flags/test_store.py",
    ("flags.md", "from pytest_chaos import FlagStore, ManualClock"): "tests/flags/test_store.py",
    ("flags.md", "from openfeature import api"): "tests/flags/test_openfeature.py",
    ("inject.md", "import os"): "tests/inject/test_docs.py",  # as a script, without pytest
    ("chaostoolkit.md", "# conftest.py"): "tests/ctk/test_docs.py",  # with --chaos-experiment-files
    (
        "README.md",
        '"""The smallest real chaos test: a service, its dependency, and the network between them.',
    ): "tests/test_readme.py",  # examples/quickstart/test_quickstart.py, shown as it is
}

#: Pages written with the site: every Python block on them must be a complete test file.
SITE_PAGES = (
    "getting-started.md",
    "concepts.md",
    "reference.md",
    "faults.md",
    "ci.md",
    "scaling.md",
    "comparison.md",
    "troubleshooting.md",
)


@dataclass(frozen=True)
class Block:
    """A Python block of a page, and the comment above it."""

    page: str
    number: int  # its place among the page's Python blocks
    code: str
    directive: str | None = None  # "setup" or "signature"
    argument: str = ""  # the rest of the comment

    @property
    def key(self) -> tuple[str, str]:
        return (self.page, first_line(self.code))

    @property
    def setup(self) -> str:
        return self.argument if self.directive == "setup" else ""

    @property
    def kind(self) -> str:
        """How it is executed: complete, elsewhere, signature, hooks, conftest, module or
        body (see the module's docstring)."""
        if is_complete(self.code):
            return "complete"
        if self.key in EXECUTED_ELSEWHERE:
            return "elsewhere"
        if self.directive == "signature":
            return "signature"
        tree = ast.parse(self.code)
        if tree.body and all(is_hook_stub(statement) for statement in tree.body):
            return "hooks"
        if first_line(self.code) == "# conftest.py":
            return "conftest"
        if any(isinstance(s, ast.FunctionDef) and s.name.startswith("test_") for s in tree.body):
            return "module"
        return "body"


def page_path(page: str) -> Path:
    """The file of a page: ``inject.md`` is docs/inject.md, a repository page is itself."""
    return ROOT / page if page in REPOSITORY_PAGES else DOCS / page


def shown(page: str) -> str:
    """A page as a reader finds it: its path from the repository's root."""
    return page_path(page).relative_to(ROOT).as_posix()


def slug(page: str) -> str:
    """A page's name as part of a Python name: ``p-q.md`` p_q, ``examples/shop/README.md``
    examples_shop_readme."""
    return re.sub(r"\W", "_", Path(page).with_suffix("").as_posix()).lower()


def page_blocks(page: str) -> list[Block]:
    text = page_path(page).read_text()
    found = []
    for number, match in enumerate(BLOCK.finditer(text)):
        before = text[: match.start()].rstrip()
        comment = (
            DIRECTIVE.match(before[before.rfind("<!--") :]) if before.endswith("-->") else None
        )
        directive, argument = (comment.group(1), comment.group(2)) if comment else (None, "")
        argument = textwrap.dedent(argument.lstrip(" ").strip("\n")).strip()
        found.append(Block(page, number, textwrap.dedent(match.group(2)), directive, argument))
    return found


def blocks(page: str) -> list[str]:
    return [block.code for block in page_blocks(page)]


def all_blocks(kind: str) -> list[Block]:
    return [block for page in pages() for block in page_blocks(page) if block.kind == kind]


def is_hook_stub(statement: ast.stmt) -> bool:
    """``def pytest_...(args): ...``"""
    return (
        isinstance(statement, ast.FunctionDef)
        and statement.name.startswith("pytest_")
        and len(statement.body) == 1
        and isinstance(statement.body[0], ast.Expr)
        and isinstance(statement.body[0].value, ast.Constant)
        and statement.body[0].value.value is Ellipsis
    )


def first_line(block: str) -> str:
    return block.splitlines()[0] if block else ""


def is_complete(block: str) -> bool:
    """The rule of tests/doc_examples.py: a whole test file."""
    return block.startswith("import") and "\ndef test_" in block


def docs_pages() -> list[str]:
    return sorted(path.name for path in DOCS.glob("*.md"))


def pages() -> list[str]:
    """Every audited page: docs/'s, then the repository's."""
    return [*docs_pages(), *REPOSITORY_PAGES]


def covered_pages() -> set[str]:
    """Pages whose complete examples a test module (other than this one) runs."""
    found = set()
    for module in TESTS.rglob("*.py"):
        if module.name in ("test_docs_site.py", "doc_examples.py"):
            continue
        text = module.read_text()
        found.update(re.findall(r'(?:examples_test|complete_examples)\(\s*"([\w.-]+\.md)"', text))
    return found


#: Pages whose examples run in a configuration of their own, by a test of this module.
RUN_APART = {
    "ci.md": "test_the_ci_example_leaves_its_evidence",
    "scaling.md": "test_the_scaling_example_runs_on_two_servers",
}


def complete_blocks(page: str) -> list[str]:
    return [block for block in blocks(page) if is_complete(block)]


def uncovered_examples() -> list[tuple[str, int, str]]:
    covered = covered_pages() | set(RUN_APART)
    return [
        (page, number, block)
        for page in pages()
        if page not in covered
        for number, block in enumerate(complete_blocks(page))
    ]


# -- every block is executed --------------------------------------------------------------


def test_every_python_block_is_executed() -> None:
    problems = []
    seen = set()
    for page in pages():
        for block in page_blocks(page):
            seen.add(block.key)
            try:
                kind = block.kind
            except SyntaxError as error:
                problems.append(f"{shown(page)}: block {block.number} does not compile: {error}")
                continue
            if page in SITE_PAGES and kind != "complete":
                problems.append(f"{shown(page)}: not a complete test file: {block.key[1]!r}")
            if block.setup and kind not in ("module", "body", "conftest"):
                problems.append(f"{shown(page)}: a setup that nothing runs, above {block.key[1]!r}")
    stale = sorted(set(EXECUTED_ELSEWHERE) - seen)
    problems += [f"listed here but not on the page any more: {key}" for key in stale]
    assert not problems, "\n".join(problems)
    assert covered_pages(), "no page's examples are run by any test module"


def test_the_readmes_are_audited_as_pages() -> None:
    """README.md and the examples' READMEs are pages of the audit: README.md's quick start
    is tests/test_readme.py's, the chaos_monkey and experiment examples run as test modules,
    and the toxiproxy-python one as a test's body, against the drop-in server on 8474."""
    assert {"README.md", "examples/quickstart/README.md", "examples/shop/README.md"} <= set(pages())
    readme = page_blocks("README.md")
    assert [block.kind for block in readme] == ["elsewhere", "module", "module", "body"]
    assert fragment_files(readme[3]).keys() == {"test_readme_03.py"}
    assert "toxiproxy_on_8474" in free_names(f"{readme[3].setup}\n{readme[3].code}")


@pytest.mark.parametrize("key", sorted(EXECUTED_ELSEWHERE))
def test_fragments_executed_elsewhere_are(key: tuple[str, str]) -> None:
    """The module said to execute a fragment reads that page."""
    page, _ = key
    assert page in (ROOT / EXECUTED_ELSEWHERE[key]).read_text()


def block_id(block: Block) -> str:
    return f"{block.page}:{block.number}"


# -- signature listings ---------------------------------------------------------------------


def resolve(path: str) -> Any:
    """The object a dotted path names: a module's attribute, at any depth."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            found = getattr(found, part)
        return found
    raise ImportError(f"nothing is importable in {path!r}")


def signature_problems(block: Block) -> list[str]:
    """How a listing ``target(name, param=default, ...)`` differs from the signature of
    the comment's ``signature: dotted.path[, except name, ...]``: a parameter it does not
    show (unless excepted) or that does not exist, a positional argument named otherwise,
    or a literal that is not the default (``[...]`` and names stand for any value; a value
    may stand for a default of None: what None means). A listing of keywords only is also
    called, and must build what the defaults build."""
    path, _, excepted = block.argument.partition(", except ")
    target = resolve(path.strip())
    [statement] = ast.parse(block.code).body
    assert isinstance(statement, ast.Expr | ast.Assign), "a listing is one call"
    call = statement.value
    assert isinstance(call, ast.Call), "a listing is one call"
    parameters = list(inspect.signature(target).parameters.values())
    if parameters and parameters[0].name in ("self", "cls"):
        parameters = parameters[1:]
    variable = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    named = {p.name: p for p in parameters if p.kind not in variable}
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    problems = []
    shown: dict[str, ast.expr] = {}
    for parameter, node in zip(positional, call.args, strict=False):
        shown[parameter.name] = node
        if isinstance(node, ast.Name) and node.id != parameter.name:
            problems.append(f"positional {node.id!r} is {parameter.name!r} in the code")
    if len(call.args) > len(positional):
        problems.append(f"{len(call.args)} positional arguments, the code takes {len(positional)}")
    shown.update({keyword.arg: keyword.value for keyword in call.keywords if keyword.arg})
    problems += [f"{name!r} is no parameter" for name in shown if name not in named]
    hidden = {name.strip() for name in excepted.split(",") if name.strip()}
    problems += [f"{name!r} is not shown" for name in named if name not in {*shown, *hidden}]
    literals = {}
    for name, node in shown.items():
        if name not in named or any(
            isinstance(n, ast.Constant) and n.value is Ellipsis for n in ast.walk(node)
        ):
            continue
        try:
            literals[name] = value = ast.literal_eval(node)
        except ValueError:
            continue  # a name, a call: an example of what to pass
        default = named[name].default
        if default is inspect.Parameter.empty or (default is None and value is not None):
            continue
        if value != default:
            problems.append(f"{name}={value!r}, but its default is {default!r}")
    built = inspect.isclass(target) and not call.args and len(literals) == len(call.keywords)
    if built and vars(target(**literals)) != vars(target()):
        problems.append("the values shown build another object than the defaults")
    return problems


@pytest.mark.parametrize("block", all_blocks("signature"), ids=block_id)
def test_signature_listings_match_the_code(block: Block) -> None:
    problems = signature_problems(block)
    assert not problems, f"{shown(block.page)}, {block.argument}: " + "; ".join(problems)


def test_a_signature_listing_that_drifts_fails() -> None:
    listing = "StatisticalJudge(\n    alpha=0.01,\n    min_sample=50,\n)\n"
    block = Block("p.md", 0, listing, "signature", "pytest_chaos.canary.judge.StatisticalJudge")
    problems = signature_problems(block)
    assert "alpha=0.01, but its default is 0.003" in problems
    assert "'min_sample' is no parameter" in problems
    assert "'min_samples' is not shown" in problems


@pytest.mark.parametrize("block", all_blocks("hooks"), ids=block_id)
def test_hook_listings_match_the_hookspecs(block: Block) -> None:
    from pytest_chaos.plugin import hookspecs

    for function in ast.parse(block.code).body:
        assert isinstance(function, ast.FunctionDef)
        spec = getattr(hookspecs, function.name, None)
        assert spec is not None, f"{shown(block.page)}: no hook {function.name}"
        arguments = [argument.arg for argument in function.args.args]
        assert arguments == list(inspect.signature(spec).parameters), function.name


def test_every_hook_is_listed() -> None:
    from pytest_chaos.plugin import hookspecs

    listed = {
        function.name
        for block in all_blocks("hooks")
        for function in ast.parse(block.code).body
        if isinstance(function, ast.FunctionDef)
    }
    assert listed == {name for name in dir(hookspecs) if name.startswith("pytest_chaos_")}


# -- fragments ------------------------------------------------------------------------------


def free_names(code: str) -> list[str]:
    """The names ``code``, run as a function's body, uses but does not define (builtins
    aside), in the order they first appear."""
    source = "def fragment():\n" + textwrap.indent(code, "    ") + "\n"
    found = set()

    def walk(table: symtable.SymbolTable) -> None:
        for symbol in table.get_symbols():
            name = symbol.get_name()
            if symbol.is_referenced() and symbol.is_global() and not hasattr(builtins, name):
                found.add(name)
        for child in table.get_children():
            walk(child)

    walk(symtable.symtable(source, "fragment", "exec").get_children()[0])
    uses = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)]
    order = [node.id for node in sorted(uses, key=lambda node: (node.lineno, node.col_offset))]
    return sorted(found, key=order.index)


def fragment_files(block: Block) -> dict[str, str]:
    """The files that run a fragment: test modules, and a conftest.py; each says where its
    block is."""
    name = f"test_{slug(block.page)}_{block.number:02d}"
    origin = f"# {shown(block.page)}, Python block {block.number} (from 0)\n"
    if block.kind == "module":
        return {f"{name}.py": f"{origin}{block.setup}\n\n\n{block.code}"}
    if block.kind == "conftest":
        return {f"{name}/conftest.py": block.code, f"{name}/{name}.py": origin + block.setup}
    assert block.kind == "body", block.kind
    body = f"{block.setup}\n{block.code}"
    arguments = ", ".join(free_names(body))
    return {f"{name}.py": f"{origin}def {name}({arguments}):\n{textwrap.indent(body, '    ')}"}


def test_a_fragment_becomes_a_test_of_the_fixtures_it_names() -> None:
    code = "link = toxiproxy.proxy(name, upstream=str(port))\nwith link.down():\n    ...\n"
    block = Block("p-q.md", 3, code, "setup", "name = 'db'\nprobe = lambda: service.port")
    assert free_names(f"{block.setup}\n{block.code}") == ["service", "toxiproxy", "port"]
    [(path, module)] = fragment_files(block).items()
    assert path == "test_p_q_03.py"
    assert module.startswith(
        "# docs/p-q.md, Python block 3 (from 0)\n"
        "def test_p_q_03(service, toxiproxy, port):\n    name = 'db'\n"
    )
    compile(module, path, "exec")


def test_the_fragments_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    """Every fragment, as a test, in one fresh pytest process with tests/docs/support.py as a
    plugin; the session's Toxiproxy is the embedded server, under the names ``main`` and
    ``cache`` (plugin.md's ``toxiproxy.host("cache")``). Every test passes; one that needs a
    container engine may skip without one (and fails with PYTEST_CHAOS_REQUIRE_CONTAINERS=1)."""
    isolate_chaos_env(monkeypatch)
    files: dict[str, str] = {}
    engine_files = set()  # type: ignore[var-annotated]
    for kind in ("module", "body", "conftest"):
        for block in all_blocks(kind):
            made = fragment_files(block)
            files.update(made)
            if "container_image" in block.setup:
                engine_files.update(Path(path).name for path in made)
    for path, content in files.items():
        (pytester.path / path).parent.mkdir(exist_ok=True)
        (pytester.path / path).write_text(content)
    expected = sum(len(re.findall(r"^def test_", text, re.M)) for text in files.values())
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.docs.support",
        "-v",
        "--chaos-toxiproxy",
        f"main={server.url}",
        "--chaos-toxiproxy",
        f"cache={server.url}",
    )
    output = result.stdout.str()
    outcomes = result.parseoutcomes()
    skipped = set(re.findall(r"^(?:\S+/)?(test_\w+\.py)::\S+ SKIPPED", output, re.M))
    assert skipped <= engine_files, output
    assert outcomes.get("passed", 0) + outcomes.get("skipped", 0) == expected, output
    assert result.ret == 0, output


def test_uncovered_examples_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Complete test files of pages that no other test module runs: all of them, in one
    fresh pytest process; every test passes."""
    isolate_chaos_env(monkeypatch)
    examples = uncovered_examples()
    assert {page for page, _, _ in examples} >= {
        "getting-started.md",
        "concepts.md",
        "faults.md",
        "comparison.md",
        "troubleshooting.md",
        "plugin.md",
    }
    files = {f"test_{slug(page)}_{number}": block for page, number, block in examples}
    pytester.makepyfile(**files)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    tests = sum(len(re.findall(r"^def test_", block, re.M)) for block in files.values())
    result.assert_outcomes(passed=tests)


def run_apart(pytester: pytest.Pytester, page: str, *args: str) -> pytest.RunResult:
    [example] = complete_blocks(page)
    pytester.makepyfile(**{f"test_{Path(page).stem}": example})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=len(re.findall(r"^def test_", example, re.M)))
    return result


def test_the_ci_example_leaves_its_evidence(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ci.md's suite, run with the gates and the evidence the page describes."""
    isolate_chaos_env(monkeypatch)
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run_apart(
        pytester,
        "ci.md",
        "--chaos-min-score",
        "90",
        "--chaos-max-deviated",
        "0",
        "--chaos-report",
        "chaos-report",
        "--junitxml",
        "chaos-report/junit.xml",
    )
    assert result.ret == 0
    report = pytester.path / "chaos-report"
    assert {"summary.json", "report.html", "journals"} <= {p.name for p in report.iterdir()}
    assert "resilience score 100/100" in summary.read_text()
    junit = (report / "junit.xml").read_text()
    for name in ("chaos_verdict", "chaos_weight", "chaos_seed", "chaos_faults"):
        assert f'<property name="{name}"' in junit, name


def test_the_ci_workflow_is_valid_yaml_with_real_options() -> None:
    import yaml

    from pytest_chaos.plugin import settings

    page = (DOCS / "ci.md").read_text()
    [workflow] = re.findall(r"```yaml\n(.*?)```", page, re.S)
    jobs = yaml.safe_load(workflow)["jobs"]
    commands = " ".join(step.get("run", "") for job in jobs.values() for step in job["steps"])
    assert "pytest" in commands
    known = {option.cli for option in settings.OPTIONS}
    assert set(re.findall(r"--chaos-[a-z-]+", commands)) <= known


def test_the_docs_name_only_real_options() -> None:
    """Every ``--chaos-...`` flag and ``PYTEST_CHAOS_...`` variable on any page exists."""
    from pytest_chaos.plugin import settings

    flags = {option.cli for option in settings.OPTIONS}
    variables = {option.env for option in settings.OPTIONS}
    for module in (ROOT / "pytest_chaos").rglob("*.py"):  # variables the code reads
        variables |= set(re.findall(r"PYTEST_CHAOS_[A-Z_]+", module.read_text()))
    unknown = []
    for page in docs_pages():
        text = (DOCS / page).read_text()
        unknown += [f"{page}: {f}" for f in set(re.findall(r"--chaos-[a-z-]+", text)) - flags]
        found = set(re.findall(r"PYTEST_CHAOS_[A-Z_]+", text))
        unknown += [f"{page}: {v}" for v in found - variables]
    assert not unknown, unknown


def test_the_scaling_example_runs_on_two_servers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scaling.md's example, as the page runs it: two drop-in servers, named on the command
    line, and two pytest-xdist workers."""
    from .servers import free_port

    isolate_chaos_env(monkeypatch)
    servers, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            servers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "pytest_chaos.proxy", "--port", str(port)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        run_apart(
            pytester,
            "scaling.md",
            "-n",
            "2",
            "--chaos-toxiproxy",
            f"edge={urls[0]}",
            "--chaos-toxiproxy",
            f"core={urls[1]}",
        )
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)


# -- the site builds ------------------------------------------------------------------------


def load_hooks() -> ModuleType:
    """docs/hooks.py, imported without leaving bytecode in docs/."""
    spec = importlib.util.spec_from_file_location("pytest_chaos_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``mkdocs build --strict`` into a temporary folder: the run and the site."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return run, out


def test_the_site_builds_strictly(site: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    run, _ = site
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout + run.stderr}"


def page_text(site: Path, page: str) -> str:
    html = (site / page / "index.html").read_text()
    return re.sub(r"<[^>]+>", "", html).replace("&amp;", "&").replace("&quot;", '"')


def test_the_reference_is_generated_from_the_code(
    site: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    from pytest_chaos import faults
    from pytest_chaos.plugin import hookspecs, markers, settings
    from pytest_chaos.proxy.registry import REGISTRY

    _, out = site
    reference = page_text(out, "reference")
    assert "<!-- reference:" not in (out / "reference" / "index.html").read_text()
    for option in settings.OPTIONS:
        assert option.cli in reference, option.cli
        assert option.ini in reference, option.ini
        assert option.env in reference, option.env
        assert " ".join(option.help.split()) in reference, option.help
    for argument in markers.ALLOWED:
        assert f"{argument}" in reference
    import pytest_chaos.plugin

    fixtures = [
        fixture
        for module in pytest_chaos.plugin.pytest_plugins
        for fixture in re.findall(
            r"@pytest\.fixture.*\ndef ([a-z]\w*)",
            (ROOT / (module.replace(".", "/") + ".py")).read_text(),
        )
    ]
    assert len(fixtures) >= 10, fixtures
    for fixture in fixtures:
        assert fixture in reference, fixture
    for hook in dir(hookspecs):
        if hook.startswith("pytest_chaos_"):
            assert hook in reference, hook
    assert "python -m pytest_chaos.proxy" in reference
    fault_page = page_text(out, "faults")
    for toxic in REGISTRY:
        assert toxic in fault_page, toxic
    for name in ("latency", "down", "kill", "action"):
        assert f"faults.{name}(" in fault_page
    assert callable(faults.latency)


def test_links_outside_docs_resolve_in_the_site(
    site: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = site
    assert "Benchmarks" in page_text(out, "benchmarks")
    copied = out / "source" / "tests" / "proxy" / "test_behaviour.py"
    assert copied.read_text() == (ROOT / "tests" / "proxy" / "test_behaviour.py").read_text()
    index = (out / "index.html").read_text()
    assert 'href="benchmarks/"' in index


def test_the_build_leaves_docs_alone(site: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    assert not (DOCS / "__pycache__").exists()


# -- the hook's own checks ------------------------------------------------------------------


def test_an_unknown_marker_fails_the_build() -> None:
    hooks = load_hooks()
    hooks._errors.clear()
    assert "unknown reference" in hooks._reference("nonsense", "page.md")
    from mkdocs.exceptions import PluginError

    with pytest.raises(PluginError, match=r"page.md: unknown marker <!-- reference:nonsense -->"):
        hooks.on_post_build(None)
    hooks._errors.clear()


def test_a_new_marker_argument_needs_a_description(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_chaos.plugin import markers

    hooks = load_hooks()
    monkeypatch.setattr(markers, "ALLOWED", (*markers.ALLOWED, "blast_radius"))
    hooks._errors.clear()
    hooks._reference("marker", "reference.md")
    assert hooks._errors == [
        "reference.md: reference:marker: ValueError: marker arguments without a description "
        "in docs/hooks.py: ['blast_radius']"
    ]
    hooks._errors.clear()


def test_repository_files_get_site_paths_mkdocs_keeps() -> None:
    hooks = load_hooks()
    assert hooks._site_path("tests/proxy/test_engine.py") == "source/tests/proxy/test_engine.py"
    assert hooks._site_path(".ci/run") == "source/_ci/run"  # MkDocs leaves out dot files
    assert hooks._site_path("examples/shop/README.md") == "source/examples/shop/README.md.txt"
