"""What loading pytest-chaos costs a suite that does not use it.

A temporary suite of trivial tests (20 files x 100 ``def test_n(): pass``) runs with the
plugin loaded and with ``-p no:chaos``, alternating, several times in the same run; the
extra wall time is printed in % of the run without the plugin (target: at most 2 %).
Collection alone (``--collect-only -q``) is timed the same way. Then a fresh interpreter
profiles an in-process ``pytest.main([... '--collect-only'])`` and reports the plugin's
share: importing it, each of its hooks, and how often collection reaches the work that only
chaos tests need (parsing a marker, starting a backend), which must be never here. It also
counts the garbage collector's full collections with and without the plugin (objects that
imported modules hold make each one longer), and breaks the import down with
``-X importtime`` (no profiler): each plugin module's own time, and each other package a
plugin module is the first to import, with everything under it.

    python3 benchmarks/plugin_overhead.py [--files 20] [--tests 100] [--repeat 11]

The plugin measured is the one in this checkout (its folder goes first on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = str(ROOT / "pytest_chaos")
BASE_ARGS = ["-q", "-p", "no:cacheprovider"]
OFF = ["-p", "no:chaos"]
TARGET_PERCENT = 2.0


def make_suite(where: Path, files: int, tests: int) -> None:
    """``files`` modules of ``tests`` trivial tests, with an empty ini so that no project
    configuration (addopts, timeout, markers) applies."""
    (where / "pytest.ini").write_text("[pytest]\n")
    body = "".join(f"def test_{n}():\n    pass\n\n" for n in range(tests))
    for index in range(files):
        (where / f"test_trivial_{index:02d}.py").write_text(body)


def child_env(pycache: Path) -> dict[str, str]:
    """This checkout first on the path; no chaos or pytest settings from the outer shell.

    Bytecode is cached (under ``pycache``, so that neither this checkout nor site-packages
    is written to), as it is for an installed plugin: without a cache every run would
    compile the plugin's modules and every test file again.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PYTEST_CHAOS_")
        and key
        not in (
            "PYTEST_ADDOPTS",
            "PYTEST_PLUGINS",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
            "PYTHONDONTWRITEBYTECODE",
        )
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_pytest(suite: Path, args: list[str], env: dict[str, str]) -> tuple[float, str]:
    argv = [sys.executable, "-m", "pytest", *args]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=suite, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return elapsed, done.stdout


def check_setup(suite: Path, env: dict[str, str]) -> str:
    """The plugin measured is this checkout's, it loads by default, and -p no:chaos drops it."""
    where = subprocess.run(
        [sys.executable, "-c", "import pytest_chaos; print(pytest_chaos.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not where.startswith(str(ROOT)):
        raise SystemExit(f"pytest_chaos imports from {where}, not from {ROOT}")
    one = ["--collect-only", "-p", "no:cacheprovider", "test_trivial_00.py"]
    _, with_plugin = run_pytest(suite, one, env)
    _, without = run_pytest(suite, [*one, *OFF], env)
    if "chaos: seed=" not in with_plugin or "chaos: seed=" in without:
        raise SystemExit("the chaos header should appear with the plugin and only then")
    return where


def alternate(
    label: str, suite: Path, args: list[str], env: dict[str, str], repeat: int
) -> dict[str, list[float]]:
    """Time ``args`` with and without the plugin, alternating which goes first, after one
    discarded warm-up run of each."""
    variants: dict[str, list[str]] = {"plugin": args, "no:chaos": [*args, *OFF]}
    for variant_args in variants.values():
        run_pytest(suite, variant_args, env)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(repeat):
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in order:
            times[name].append(run_pytest(suite, variants[name], env)[0])
        print(f"  {label} round {round_ + 1}/{repeat}", file=sys.stderr, flush=True)
    return times


def summarise(title: str, times: dict[str, list[float]]) -> float:
    """Print one table; return the extra median wall time in %."""
    print(f"\n{title}")
    print(f"{'variant':<12}{'median s':>10}{'min s':>10}{'max s':>10}   runs (s)")
    for name, values in times.items():
        runs = " ".join(f"{v:.3f}" for v in values)
        print(
            f"{name:<12}{statistics.median(values):>10.3f}{min(values):>10.3f}"
            f"{max(values):>10.3f}   {runs}"
        )
    on, off = times["plugin"], times["no:chaos"]
    by_median = (statistics.median(on) / statistics.median(off) - 1) * 100
    by_min = (min(on) / min(off) - 1) * 100
    # each round times both variants back to back: the median of those differences is the
    # figure least moved by drift in the machine's load
    paired = statistics.median(a - b for a, b in zip(on, off, strict=True))
    print(
        f"plugin overhead: {by_median:+.2f} % by median "
        f"({(statistics.median(on) - statistics.median(off)) * 1000:+.0f} ms), "
        f"{by_min:+.2f} % by min, {paired / statistics.median(off) * 100:+.2f} % by the median "
        f"of paired differences ({paired * 1000:+.0f} ms)"
    )
    return by_median


# -- the profile, in a fresh interpreter ----------------------------------------------------


def _in_plugin(filename: str) -> bool:
    return filename.startswith(PLUGIN_DIR)


def profile_collection(suite: str) -> dict[str, object]:
    """Run in a fresh interpreter: profile ``pytest.main(--collect-only)`` with the plugin,
    and list the modules only the plugin brings in."""
    import pytest

    args = [suite, "--collect-only", *BASE_ARGS]
    sink = io.StringIO()
    stdout, sys.stdout = sys.stdout, sink
    profiler = cProfile.Profile()
    try:
        start = time.perf_counter()
        profiler.enable()
        code = pytest.main(args)
        profiler.disable()
        total = time.perf_counter() - start
    finally:
        sys.stdout = stdout
    if code != 0:
        raise SystemExit(f"in-process collection failed ({code}):\n{sink.getvalue()}")
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    profiled_total = max(entry[3] for entry in stats.values())  # pytest.main's cumtime

    def find(path_end: str, function: str) -> tuple[int, float]:
        """(calls, cumulative seconds) of one function of the plugin."""
        for (filename, _, name), (_, calls, _, cumtime, _) in stats.items():
            if _in_plugin(filename) and filename.endswith(path_end) and name == function:
                return calls, cumtime
        return 0, 0.0

    hooks = {}
    for hook in (
        "pytest_addhooks",
        "pytest_addoption",
        "pytest_configure",
        "pytest_report_header",
        "pytest_collection_modifyitems",
        "pytest_unconfigure",
    ):
        hooks[f"plugin.py:{hook}"] = find("plugin.py", hook)
    work = {
        "markers.py:of (marker lookup per item)": find("markers.py", "of"),
        "markers.py:parse (chaos tests only)": find("markers.py", "parse"),
        "session.py:ChaosSession.urls (starts backends)": find("session.py", "urls"),
        "backends.py:ProcessBackend.start": find("backends.py", "start"),
    }
    # Importing the plugin: the outermost plugin module executed, which includes whatever
    # it imports (httpx, tenacity...). Nested plugin modules are inside it.
    import_calls, import_time = find(os.sep + "plugin.py", "<module>")
    return {
        "total": total,
        "profiled_total": profiled_total,
        "import": (import_calls, import_time),
        "hooks": hooks,
        "work": work,
        "modules": sorted(sys.modules),
    }


def modules_without_plugin(suite: str) -> list[str]:
    """Run in a fresh interpreter: the modules a collection without the plugin loads."""
    import pytest

    sink = io.StringIO()
    stdout, sys.stdout = sys.stdout, sink
    try:
        pytest.main([suite, "--collect-only", *BASE_ARGS, *OFF])
    finally:
        sys.stdout = stdout
    return sorted(sys.modules)


def hook_timing(suite: str) -> float:
    """Run in a fresh interpreter: milliseconds spent in the plugin's marker validation
    during an unprofiled in-process ``--collect-only``."""
    import pytest

    from pytest_chaos.plugin import markers

    validate = markers.validate
    spent = [0.0]

    def timed(items: object) -> None:
        start = time.perf_counter()
        try:
            validate(items)  # type: ignore[arg-type]
        finally:
            spent[0] += time.perf_counter() - start

    markers.validate = timed
    sink = io.StringIO()
    stdout, sys.stdout = sys.stdout, sink
    try:
        pytest.main([suite, "--collect-only", *BASE_ARGS])
    finally:
        sys.stdout = stdout
    return spent[0] * 1000


def gc_timing(suite: str, without_plugin: bool = False) -> dict[str, float]:
    """Run in a fresh interpreter: the garbage collector's work during an in-process
    ``--collect-only``: full (generation 2) collections, their time, and the objects alive
    at the end. More objects held by imported modules make each full collection longer."""
    import gc

    import pytest

    full = {"count": 0.0, "ms": 0.0}
    started = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            full["count"] += 1
            full["ms"] += (time.perf_counter() - started[0]) * 1000

    gc.callbacks.append(watch)
    sink = io.StringIO()
    stdout, sys.stdout = sys.stdout, sink
    try:
        pytest.main([suite, "--collect-only", *BASE_ARGS, *(OFF if without_plugin else [])])
    finally:
        sys.stdout = stdout
    gc.callbacks.remove(watch)
    return {**full, "objects": float(len(gc.get_objects()))}


def gc_timing_without_plugin(suite: str) -> dict[str, float]:
    return gc_timing(suite, without_plugin=True)


def import_breakdown(env: dict[str, str], repeat: int = 5) -> tuple[float, list[tuple[str, float]]]:
    """``-X importtime`` of the plugin after pytest: the plugin's total in ms, and its parts:
    each plugin module's own time, and each other module a plugin module imports first
    (with its subtree). Medians over ``repeat`` interpreters."""
    totals: list[float] = []
    parts: dict[str, list[float]] = {}
    for _ in range(repeat):
        done = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-c",
                "import pytest; import pytest_chaos.plugin.hooks",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        rows: list[
            tuple[int, str, int, int]
        ] = []  # (depth, name, self µs, cumulative µs), in the order printed (post-order)
        for line in done.stderr.splitlines():
            fields = line.split("|")
            if not line.startswith("import time:") or len(fields) != 3:
                continue
            own_us = fields[0].partition(":")[2].strip()
            if not own_us.isdigit():
                continue  # the header line
            label = fields[2].rstrip()
            depth = (len(label) - len(label.lstrip(" ")) - 1) // 2  # one space after the bar
            rows.append((depth, label.strip(), int(own_us), int(fields[1].strip())))
        start = next(i for i, row in enumerate(rows) if row[1] == "pytest_chaos.plugin.hooks")
        # the plugin's subtree: the rows before it, back to the first one at a lower depth
        first = start
        while first > 0 and rows[first - 1][0] > rows[start][0]:
            first -= 1
        subtree = rows[first : start + 1]
        totals.append(rows[start][3] / 1000)
        parents: dict[int, str] = {}
        seen: dict[str, float] = {}
        for depth, name, own, cumulative in reversed(subtree):  # pre-order: parents first
            parents[depth] = name
            parent = parents.get(depth - 1, "")
            if name.startswith("pytest_chaos"):
                seen[f"{name} (own)"] = own / 1000
            elif parent.startswith("pytest_chaos"):
                seen[f"{name} (from {parent})"] = cumulative / 1000
        for key, value in seen.items():
            parts.setdefault(key, []).append(value)
    medians = [(key, statistics.median(values)) for key, values in parts.items()]
    return statistics.median(totals), sorted(medians, key=lambda kv: -kv[1])


def in_fresh_interpreter(
    function: Callable[[str], object], suite: Path, env: dict[str, str]
) -> object:
    argv = [sys.executable, __file__, "--child", function.__name__, str(suite)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=suite)
    if done.returncode != 0:
        raise SystemExit(f"{function.__name__} failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout)


def report_profile(suite: Path, env: dict[str, str], count: int) -> None:
    profile: dict = in_fresh_interpreter(profile_collection, suite, env)  # type: ignore[assignment]
    baseline: list[str] = in_fresh_interpreter(modules_without_plugin, suite, env)  # type: ignore[assignment]
    validate_ms: float = in_fresh_interpreter(hook_timing, suite, env)  # type: ignore[assignment]
    total = profile["profiled_total"]
    print(
        f"\nin-process pytest.main(--collect-only) under cProfile: {total * 1000:.0f} ms "
        "(profiling inflates every figure; the shares are what matter)"
    )
    print(f"{'plugin part':<52}{'calls':>7}{'cum ms':>9}{'share':>8}")
    rows = [("import of pytest_chaos.plugin.hooks (and what it imports)", *profile["import"])]
    rows += [(name, *value) for name, value in profile["hooks"].items()]
    plugin_time = 0.0
    for name, calls, cumtime in rows:
        plugin_time += cumtime
        print(f"{name:<52}{calls:>7}{cumtime * 1000:>9.1f}{cumtime / total * 100:>7.2f}%")
    print(
        f"{'plugin total':<52}{'':>7}{plugin_time * 1000:>9.1f}{plugin_time / total * 100:>7.2f}%"
    )
    print(f"\ncollection work reached ({count} tests, none marked chaos):")
    for name, (calls, cumtime) in profile["work"].items():
        print(f"  {name:<50}{calls:>7} calls {cumtime * 1000:>8.2f} ms")
    print(
        f"  markers.validate without the profiler: {validate_ms:.2f} ms for {count} tests "
        f"({validate_ms / count * 1000:.2f} µs a test)"
    )
    extra = sorted(set(profile["modules"]) - set(baseline))
    packages = sorted({name.partition(".")[0] for name in extra} - {"pytest_chaos"})
    print(
        f"modules imported only with the plugin: {len(extra)} "
        f"(packages other than pytest_chaos: {', '.join(packages)})"
    )
    on: dict[str, float] = in_fresh_interpreter(gc_timing, suite, env)  # type: ignore[assignment]
    off: dict[str, float] = in_fresh_interpreter(gc_timing_without_plugin, suite, env)  # type: ignore[assignment]
    print(
        f"full garbage collections during --collect-only: {on['count']:.0f} taking "
        f"{on['ms']:.1f} ms with the plugin, {off['count']:.0f} taking {off['ms']:.1f} ms "
        f"without; objects alive at the end: {on['objects']:.0f} vs {off['objects']:.0f} "
        f"({on['objects'] - off['objects']:+.0f})"
    )
    total_ms, parts = import_breakdown(env)
    print(
        f"\nimport of pytest_chaos.plugin.hooks after pytest, -X importtime, median of 5: "
        f"{total_ms:.1f} ms, of which:"
    )
    for name, ms in parts:
        if ms >= 0.5:
            print(f"  {name:<60}{ms:>7.1f} ms")
    rest = total_ms - sum(ms for _, ms in parts if ms >= 0.5)
    print(f"  {'(smaller parts)':<60}{rest:>7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--tests", type=int, default=100, help="tests per file")
    parser.add_argument("--repeat", type=int, default=11, help="timed runs of each variant")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        function = {
            "profile_collection": profile_collection,
            "modules_without_plugin": modules_without_plugin,
            "hook_timing": hook_timing,
            "gc_timing": gc_timing,
            "gc_timing_without_plugin": gc_timing_without_plugin,
        }[args.child[0]]
        print(json.dumps(function(args.child[1])))
        return

    with tempfile.TemporaryDirectory(prefix="chaos-overhead-") as tmp:
        suite = Path(tmp) / "suite"
        suite.mkdir()
        env = child_env(Path(tmp) / "pycache")
        make_suite(suite, args.files, args.tests)
        where = check_setup(suite, env)
        count = args.files * args.tests
        print(
            f"{count} trivial tests ({args.files} files x {args.tests}), "
            f"python -m pytest {' '.join(BASE_ARGS)} [-p no:chaos]; "
            f"{args.repeat} alternating runs of each after a warm-up; plugin from {where}"
        )
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        run = alternate("run", suite, BASE_ARGS, env, args.repeat)
        collect = alternate("collect", suite, ["--collect-only", *BASE_ARGS], env, args.repeat)
        overhead = summarise(f"full run ({count} tests)", run)
        summarise("collection only (--collect-only -q)", collect)
        report_profile(suite, env, count)
        verdict = "met" if overhead <= TARGET_PERCENT else "MISSED"
        print(f"\ntarget <= {TARGET_PERCENT:.0f} % extra wall time (full run, median): {verdict}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
