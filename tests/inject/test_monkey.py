"""The Chaos Monkey's decorators with real functions, threads and event loops: every fault
kind (sync and async), the triggers, call filters, switches, seeds, dry run, stats and
records."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pytest_chaos.faults import FaultLog
from pytest_chaos.inject import Call, ChaosConfig, ChaosMonkey, ChaosMonkeyError, Injection

#: On, every call considered is struck unless a fault says otherwise, and the latency
#: range used by "neither" faults is short enough for many calls.
ON = ChaosConfig(enabled=True, failure_rate=1.0, latency_min_ms=0.1, latency_max_ms=1.0)

Pattern = list[tuple[int, str, float]]


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def monkey_on(seed: int = 1, **config: Any) -> ChaosMonkey:
    """An enabled monkey: ``ON`` with ``config``'s changes."""
    return ChaosMonkey(dataclasses.replace(ON, **config), seed=seed)


def payer(
    monkey: ChaosMonkey, is_async: bool, service: str | None = "payments", **options: Any
) -> Callable[..., str]:
    """A decorated ``pay(amount, currency="EUR")``, sync or async; either way a plain
    callable (the async one runs in a fresh event loop per call). Each has the same
    qualified name in every monkey, so the same seed gives it the same stream."""
    if is_async:

        @monkey.chaos(service, **options)
        async def pay_async(amount: int, currency: str = "EUR") -> str:
            await asyncio.sleep(0)
            return f"{amount} {currency}"

        return lambda *args, **kwargs: asyncio.run(pay_async(*args, **kwargs))

    @monkey.chaos(service, **options)
    def pay(amount: int, currency: str = "EUR") -> str:
        return f"{amount} {currency}"

    return pay


def timed(func: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Milliseconds the call took (time.monotonic) and what it returned or raised."""
    start = time.monotonic()
    try:
        outcome = func(*args, **kwargs)
    except Exception as error:
        outcome = error
    return (time.monotonic() - start) * 1000, outcome


def outcomes(func: Callable[..., Any], calls: int) -> list[Any]:
    return [timed(func, n)[1] for n in range(1, calls + 1)]


def pattern(monkey: ChaosMonkey, fault: str | None = None) -> Pattern:
    """Call by call, what the monkey (or one fault of it) struck: number, kind, latency."""
    return [
        (injection.call, injection.kind, injection.latency_ms)
        for injection in monkey.injections
        if fault is None or injection.fault == fault
    ]


def struck(monkey: ChaosMonkey) -> list[int]:
    return [injection.call for injection in monkey.injections]


# -- errors ----------------------------------------------------------------------------------


def test_error_instance_is_raised(is_async: bool) -> None:
    monkey = monkey_on()
    boom = ConnectionError("card network down")
    pay = payer(monkey, is_async, error=boom)
    for _ in range(2):
        with pytest.raises(ConnectionError) as caught:
            pay(10)
        assert caught.value is boom
    (first, second) = monkey.injections
    assert (first.kind, first.call, second.call) == ("error", 1, 2)
    assert first.details == {"raised": repr(boom)}
    assert first.target.endswith("pay_async" if is_async else "pay")
    assert first.latency_ms == 0.0 and not first.dry_run


def test_error_type_is_instantiated_with_a_message(is_async: bool) -> None:
    monkey = monkey_on()
    pay = payer(monkey, is_async, error=TimeoutError)
    first, second = (timed(pay, 1)[1], timed(pay, 2)[1])
    assert isinstance(first, TimeoutError) and isinstance(second, TimeoutError)
    assert first is not second
    assert "call 1 of" in str(first) and "call 2 of" in str(second)
    assert monkey.injections[0].target in str(first)


def test_error_type_whose_constructor_needs_other_arguments() -> None:
    class Refused(Exception):
        def __init__(self, code: int, reason: str) -> None:
            super().__init__(code, reason)

    class Bare(Exception):
        def __init__(self) -> None:
            super().__init__("bare")

    monkey = monkey_on()

    @monkey.chaos(error=Bare)
    def work() -> None:
        pass

    with pytest.raises(Bare, match="bare"):
        work()

    @monkey.chaos(error=Refused)
    def other() -> None:
        pass

    with pytest.raises(TypeError):  # neither Refused(message) nor Refused() can be built
        other()


def test_error_factory_is_called_for_each_struck_call(is_async: bool) -> None:
    made: list[OSError] = []

    def factory() -> OSError:
        made.append(OSError(f"disk {len(made) + 1} gone"))
        return made[-1]

    monkey = monkey_on()
    pay = payer(monkey, is_async, error=factory, every=2)
    results = outcomes(pay, 4)
    assert results[0] == "1 EUR" and results[2] == "3 EUR"
    assert results[1] is made[0] and results[3] is made[1]
    assert len(made) == 2


def test_error_factory_returning_a_non_exception_is_a_type_error(is_async: bool) -> None:
    def factory() -> Any:
        return "not an exception"

    pay = payer(monkey_on(), is_async, error=factory)
    with pytest.raises(TypeError, match="factory") as caught:
        pay(1)
    assert "factory" in str(caught.value) and "'not an exception'" in str(caught.value)
    assert "pay" in str(caught.value)


@pytest.mark.parametrize("error", ["boom", 42, int, None.__class__], ids=repr)
def test_bad_error_value_is_refused_when_decorating(error: object, is_async: bool) -> None:
    """Strings, numbers, and classes that are not exceptions (which would be callable,
    hence taken for factories and fail only when struck) are refused at once."""
    with pytest.raises(TypeError, match="error="):
        payer(monkey_on(), is_async, error=error)


# -- latency ---------------------------------------------------------------------------------


def test_fixed_latency_is_never_early(is_async: bool) -> None:
    monkey = monkey_on()
    pay = payer(monkey, is_async, latency_ms=3)
    for n in range(3):
        elapsed, result = timed(pay, n)
        assert result == f"{n} EUR"
        assert elapsed >= monkey.injections[-1].latency_ms == 3.0
    assert [i.kind for i in monkey.injections] == ["latency"] * 3


def test_latency_range_is_drawn_and_never_early(is_async: bool) -> None:
    monkey = monkey_on()
    pay = payer(monkey, is_async, latency_ms=(1, 4))
    for n in range(8):
        elapsed, result = timed(pay, n)
        assert result == f"{n} EUR"
        assert elapsed >= monkey.injections[-1].latency_ms
    latencies = [i.latency_ms for i in monkey.injections]
    assert all(1.0 <= latency <= 4.0 for latency in latencies)
    assert len(set(latencies)) > 1


def test_error_and_latency_together(is_async: bool) -> None:
    monkey = monkey_on()
    pay = payer(monkey, is_async, error=ValueError, latency_ms=2)
    elapsed, result = timed(pay, 5)
    assert isinstance(result, ValueError)
    assert elapsed >= 2.0
    (injection,) = monkey.injections
    assert (injection.kind, injection.latency_ms) == ("error", 2.0)
    assert monkey.stats()["failures_injected"] == 1
    assert monkey.stats()["latencies_injected"] == 1


def test_neither_error_nor_latency_gives_one_of_the_two_per_call() -> None:
    """With neither given, each struck call fails (ChaosMonkeyError naming the service) or
    is delayed within the config's range, about half each; the exact split is the seed's,
    so two monkeys with the same seed agree call by call."""
    calls = 300
    runs = []
    for _ in range(2):
        monkey = monkey_on(seed=7)
        pay = payer(monkey, False)
        timings = [timed(pay, n) for n in range(calls)]
        runs.append((monkey, timings))
    (monkey, timings), (twin, _) = runs
    assert pattern(monkey) == pattern(twin)
    errors = [i for i in monkey.injections if i.kind == "error"]
    delays = [i for i in monkey.injections if i.kind == "latency"]
    assert len(errors) + len(delays) == calls
    assert 0.35 * calls < len(errors) < 0.65 * calls
    assert all(i.latency_ms == 0.0 for i in errors)
    assert all(0.1 <= i.latency_ms <= 1.0 for i in delays)
    for injection, (elapsed, outcome) in zip(monkey.injections, timings, strict=True):
        if injection.kind == "error":
            assert isinstance(outcome, ChaosMonkeyError)
            assert "Chaos Monkey killed payments!" in str(outcome)
        else:
            assert outcome == f"{injection.call - 1} EUR"
            assert elapsed >= injection.latency_ms
    stats = monkey.stats()
    assert (stats["failures_injected"], stats["latencies_injected"]) == (len(errors), len(delays))


def test_neither_mode_async() -> None:
    monkey = monkey_on(seed=3)
    pay = payer(monkey, True)
    results = outcomes(pay, 40)
    kinds = {i.kind for i in monkey.injections}
    assert kinds == {"error", "latency"}
    for injection, outcome in zip(monkey.injections, results, strict=True):
        assert isinstance(outcome, ChaosMonkeyError) == (injection.kind == "error")


# -- what can be decorated -------------------------------------------------------------------


def test_methods_static_and_class_methods() -> None:
    monkey = monkey_on()
    seen: list[dict[str, Any]] = []

    def remember(call: Call) -> bool:
        seen.append(call.arguments)
        return True

    class Shop:
        def __init__(self) -> None:
            self.sold = 0

        @monkey.chaos("shop", every=2, error=KeyError, when=remember)
        def sell(self, item: str) -> str:
            self.sold += 1
            return item

        @monkey.chaos("shop", every=2, error=KeyError)
        async def restock(self, item: str) -> str:
            await asyncio.sleep(0)
            return item

        @monkey.chaos("shop", every=2, error=KeyError)
        @staticmethod
        def price(item: str) -> int:
            return len(item)

        @monkey.chaos("shop", every=2, error=KeyError)
        @classmethod
        def open(cls, name: str) -> Shop:
            return cls()

        @monkey.chaos  # bare, above a classmethod (not callable itself)
        @classmethod
        def kind(cls) -> str:
            return cls.__name__

    shop = Shop()
    assert shop.sell("apple") == "apple"
    with pytest.raises(KeyError):
        shop.sell("pear")
    assert shop.sold == 1
    assert seen[0]["self"] is shop and seen[1] == {"self": shop, "item": "pear"}

    assert asyncio.run(shop.restock("fig")) == "fig"
    with pytest.raises(KeyError):
        asyncio.run(shop.restock("fig"))

    assert isinstance(Shop.__dict__["price"], staticmethod)
    assert Shop.price("kiwi") == 4
    with pytest.raises(KeyError):
        shop.price("kiwi")

    assert isinstance(Shop.__dict__["open"], classmethod)
    assert isinstance(Shop.open("x"), Shop)
    with pytest.raises(KeyError):
        shop.open("y")

    assert isinstance(Shop.__dict__["kind"], classmethod)
    outcome = timed(Shop.kind)[1]  # neither error nor latency: one of the two
    assert outcome == "Shop" or isinstance(outcome, ChaosMonkeyError)
    assert monkey.injections[-1].target.endswith(".Shop.kind")

    targets = {i.target.rsplit(".", 1)[-1] for i in monkey.injections}
    assert targets == {"sell", "restock", "price", "open", "kind"}
    assert all(".Shop." in i.target for i in monkey.injections)


def test_bare_decorator_on_a_function() -> None:
    monkey = monkey_on()

    @monkey.chaos
    def work() -> int:
        return 1

    outcomes(lambda n: work(), 20)
    assert work.__name__ == "work"
    assert [i.call for i in monkey.injections] == list(range(1, 21))
    assert {i.kind for i in monkey.injections} == {"error", "latency"}


def test_decorated_function_keeps_its_name_and_kind() -> None:
    monkey = monkey_on()

    @monkey.chaos(latency_ms=0)
    async def fetch() -> int:
        """Fetch a thing."""
        return 1

    assert fetch.__name__ == "fetch" and fetch.__doc__ == "Fetch a thing."
    assert asyncio.iscoroutinefunction(fetch)


def test_async_generator_function_is_refused() -> None:
    monkey = monkey_on()

    async def stream() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match="async generator function") as caught:
        monkey.chaos(error=ValueError)(stream)
    assert "stream" in str(caught.value)


def test_non_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="not 42"):
        monkey_on().chaos(error=ValueError)(42)


# -- triggers --------------------------------------------------------------------------------


def test_every_third_call(is_async: bool) -> None:
    monkey = monkey_on()
    pay = payer(monkey, is_async, every=3, error=ValueError)
    results = outcomes(pay, 10)
    assert [n for n, r in enumerate(results, 1) if isinstance(r, ValueError)] == [3, 6, 9]
    assert struck(monkey) == [3, 6, 9]


def test_first_n_calls(is_async: bool) -> None:
    monkey = monkey_on()
    pay = payer(monkey, is_async, first=2, error=ValueError)
    results = outcomes(pay, 6)
    assert [isinstance(r, ValueError) for r in results] == [True, True] + [False] * 4
    assert struck(monkey) == [1, 2]


def test_first_with_every() -> None:
    monkey = monkey_on()
    pay = payer(monkey, False, every=2, first=5, error=ValueError)
    outcomes(pay, 12)
    assert struck(monkey) == [2, 4]


def test_first_with_a_rate_draws_only_inside_the_window() -> None:
    """Past ``first`` no draw is taken, so a longer run strikes the same early calls."""
    short, long = monkey_on(seed=5), monkey_on(seed=5)
    outcomes(payer(short, False, rate=0.5, first=30, error=ValueError), 30)
    outcomes(payer(long, False, rate=0.5, first=30, error=ValueError), 90)
    assert struck(short) == struck(long)
    assert all(call <= 30 for call in struck(long))


def test_for_seconds_window_starts_at_the_first_matching_call() -> None:
    """Calls in the first T seconds after the first matching call are struck, later ones
    pass; time before the first call does not count (a fault made at import time still
    gets its window). The wait past the window is measured from after the first call, so
    it is past the window whatever the scheduling."""
    window = 0.3
    monkey = monkey_on()
    pay = payer(monkey, False, for_s=window, error=ValueError)
    time.sleep(window + 0.05)  # made long ago: the window has not started yet
    with pytest.raises(ValueError):
        pay(1)
    window_over = time.monotonic() + window  # the window opened before this line
    time.sleep(max(0.0, window_over + 0.05 - time.monotonic()))
    assert pay(2) == "2 EUR"
    assert pay(3) == "3 EUR"
    assert struck(monkey) == [1]


def test_a_refused_fault_does_not_use_up_a_stream_name() -> None:
    """A fault rejected for a bad argument leaves the next one on the same target with the
    target's own name (and stream), as if the mistake had never been made."""
    monkey = monkey_on()
    with pytest.raises(ValueError, match="latency_ms"):
        payer(monkey, False, latency_ms=-1)
    pay = payer(monkey, False, error=ValueError)
    with pytest.raises(ValueError):
        pay(1)
    assert [i.fault for i in monkey.injections] == [monkey.injections[0].target]


@pytest.mark.parametrize("service", [42, "", ["payments"]])
def test_a_service_that_is_not_a_name_is_refused(service: Any) -> None:
    with pytest.raises(ValueError, match=r"service=.*non-empty string"):
        monkey_on().chaos(service, error=ValueError)


def test_rate_zero_never_strikes(is_async: bool) -> None:
    monkey = monkey_on()
    pay = payer(monkey, is_async, rate=0, error=ValueError)
    assert outcomes(pay, 30) == [f"{n} EUR" for n in range(1, 31)]
    assert monkey.injections == []
    assert monkey.stats()["experiments_run"] == 30


def test_rate_one_always_strikes(is_async: bool) -> None:
    monkey = monkey_on(failure_rate=0.0)
    pay = payer(monkey, is_async, rate=1, error=ValueError)
    assert all(isinstance(r, ValueError) for r in outcomes(pay, 30))
    assert struck(monkey) == list(range(1, 31))


def test_rate_defaults_to_the_config_failure_rate() -> None:
    never = monkey_on(failure_rate=0.0)
    outcomes(payer(never, False, error=ValueError), 20)
    assert never.injections == []
    always = monkey_on(failure_rate=1.0)
    outcomes(payer(always, False, error=ValueError), 20)
    assert len(always.injections) == 20
    sometimes = monkey_on(failure_rate=0.0)
    outcomes(payer(sometimes, False, every=4, error=ValueError), 20)  # every ignores it
    assert struck(sometimes) == [4, 8, 12, 16, 20]


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"rate": 1.5}, "rate=1.5"),
    ({"rate": -0.1}, "rate=-0.1"),
    ({"rate": "0.5"}, "rate='0.5'"),
    ({"every": 0}, "every=0"),
    ({"every": True}, "every=True"),
    ({"every": 2.5}, "every=2.5"),
    ({"first": -1}, "first=-1"),
    ({"first": 0}, "first=0"),
    ({"for_s": 0}, "for_s=0"),
    ({"for_s": float("inf")}, "for_s=inf"),
    ({"rate": 0.5, "every": 2}, "rate=0.5 and every=2"),
    ({"latency_ms": (5, 1)}, "latency_ms=(5, 1)"),
    ({"latency_ms": -1}, "latency_ms=-1"),
    ({"latency_ms": (1, 2, 3)}, "latency_ms=(1, 2, 3)"),
    ({"latency_ms": "5"}, "latency_ms='5'"),
]


@pytest.mark.parametrize(
    ("options", "named"), [pytest.param(*case, id=case[1]) for case in BAD_VALUES]
)
def test_bad_values_are_value_errors_naming_them(options: dict[str, Any], named: str) -> None:
    monkey = monkey_on()
    with pytest.raises(ValueError) as caught:

        @monkey.chaos(**options)
        def work() -> None:
            pass

    assert named in str(caught.value)
    assert monkey.log.faults == []


def test_unknown_keyword_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="'errors'"):
        monkey_on().chaos(errors=ValueError)  # type: ignore[call-arg]


# -- call filters ----------------------------------------------------------------------------


def test_when_filters_by_argument(is_async: bool) -> None:
    """``arguments`` has the parameter names, whether passed by position or keyword, and
    the defaults of those not passed."""
    monkey = monkey_on()
    seen: list[Call] = []

    def in_dollars(call: Call) -> bool:
        seen.append(call)
        return bool(call.arguments["currency"] == "USD")

    pay = payer(monkey, is_async, error=ValueError, when=in_dollars)
    assert pay(1) == "1 EUR"
    with pytest.raises(ValueError):
        pay(2, "USD")
    with pytest.raises(ValueError):
        pay(3, currency="USD")
    assert pay(amount=4, currency="GBP") == "4 GBP"
    assert seen[0].arguments == {"amount": 1, "currency": "EUR"}
    assert (seen[1].args, seen[1].kwargs) == ((2, "USD"), {})
    assert (seen[2].args, seen[2].kwargs) == ((3,), {"currency": "USD"})
    assert seen[3].arguments == {"amount": 4, "currency": "GBP"}
    assert seen[0].target == monkey.injections[0].target
    assert struck(monkey) == [1, 2]
    assert monkey.stats()["experiments_run"] == 2


def test_filtered_calls_do_not_count_for_every_nth() -> None:
    monkey = monkey_on()
    pay = payer(
        monkey, False, every=2, error=ValueError, when=lambda c: c.arguments["amount"] > 100
    )
    amounts = [500, 5, 6, 700, 7, 800, 900, 8, 1000]
    failed = [amount for amount in amounts if isinstance(timed(pay, amount)[1], ValueError)]
    assert failed == [700, 900]
    assert struck(monkey) == [2, 4]
    assert monkey.stats()["experiments_run"] == 5


def test_when_must_be_callable() -> None:
    with pytest.raises(TypeError, match="when="):
        payer(monkey_on(), False, when=True)


# -- services and switches -------------------------------------------------------------------


def test_affected_services() -> None:
    monkey = monkey_on(affected_services=["payments"])
    payments = payer(monkey, False, "payments", error=ValueError)
    inventory = payer(monkey, False, "inventory", error=ValueError)
    anything = payer(monkey, False, None, error=ValueError)
    assert inventory(1) == "1 EUR"
    with pytest.raises(ValueError):
        payments(1)
    with pytest.raises(ValueError):
        anything(1)
    assert len(monkey.injections) == 2
    assert monkey.stats()["experiments_run"] == 2  # the unaffected service is not counted


def test_enabled_switch(is_async: bool) -> None:
    monkey = monkey_on()
    pay = payer(monkey, is_async, error=ValueError)
    monkey.enabled = False
    assert pay(1) == "1 EUR"
    monkey.enabled = True
    with pytest.raises(ValueError):
        pay(2)
    assert struck(monkey) == [1]


def test_disabled_monkey_leaves_calls_alone_and_records_nothing(is_async: bool) -> None:
    monkey = ChaosMonkey(seed=1)  # the default config is off
    assert not monkey.enabled
    pay = payer(monkey, is_async, error=ValueError, latency_ms=3_600_000)
    assert outcomes(pay, 5) == [f"{n} EUR" for n in range(1, 6)]
    assert monkey.injections == []
    assert monkey.stats() == {
        "experiments_run": 0,
        "failures_injected": 0,
        "latencies_injected": 0,
        "failure_rate": 0.0,
    }


def test_active_and_paused_restore_the_previous_state() -> None:
    monkey = ChaosMonkey(ChaosConfig(failure_rate=1.0), seed=1)  # off
    pay = payer(monkey, False, error=ValueError)
    with monkey.active() as same:
        assert same is monkey and monkey.enabled
        with pytest.raises(ValueError):
            pay(1)
        with monkey.paused():
            assert pay(2) == "2 EUR"
        assert monkey.enabled
    assert not monkey.enabled
    assert pay(3) == "3 EUR"
    with pytest.raises(RuntimeError), monkey.active():
        raise RuntimeError("test body failed")
    assert not monkey.enabled
    monkey.enabled = True
    with pytest.raises(RuntimeError), monkey.paused():
        raise RuntimeError("test body failed")
    assert monkey.enabled
    assert struck(monkey) == [1]  # paused and disabled calls are not counted


# -- seeds -----------------------------------------------------------------------------------


def seeded_run(seed: int, calls: int = 200) -> Pattern:
    monkey = monkey_on(seed=seed)
    outcomes(payer(monkey, False, rate=0.5, error=ValueError, latency_ms=(0.01, 0.05)), calls)
    return pattern(monkey)


def test_same_seed_replays_the_same_pattern() -> None:
    first, second = seeded_run(11), seeded_run(11)
    assert first == second
    assert 0 < len(first) < 200
    assert len({latency for _, _, latency in first}) > 1


def test_different_seed_gives_a_different_pattern() -> None:
    first, other = seeded_run(11), seeded_run(12)
    assert [call for call, _, _ in first] != [call for call, _, _ in other]


def test_two_faults_on_one_target_have_independent_streams() -> None:
    """A second fault on the same function is named ``target#2`` and draws from its own
    stream: the first fault strikes exactly as it does when alone. (Dry run, so that the
    outer fault's errors do not hide calls from the inner one.)"""

    def build(monkey: ChaosMonkey, twice: bool) -> Callable[[int], int]:
        def work(n: int) -> int:
            return n

        wrapped = monkey.chaos(rate=0.5, error=ValueError)(work)
        if twice:
            wrapped = monkey.chaos(rate=0.5, error=ValueError)(wrapped)
        return wrapped

    config = ChaosConfig(enabled=True)
    both = ChaosMonkey(config, seed=4, log=FaultLog(dry_run=True))
    alone = ChaosMonkey(config, seed=4, log=FaultLog(dry_run=True))
    outcomes(build(both, True), 200)
    outcomes(build(alone, False), 200)
    name = alone.injections[0].fault
    assert {i.fault for i in both.injections} == {name, f"{name}#2"}
    assert pattern(both, name) == pattern(alone)
    assert pattern(both, f"{name}#2") != pattern(both, name)
    assert [r.target for r in both.log.faults] == [name, name]


# -- threads and tasks -----------------------------------------------------------------------


def hammer(func: Callable[[int], Any], threads: int, calls: int) -> int:
    """Call ``func`` ``calls`` times from each of ``threads`` threads started together;
    return how many calls raised ValueError."""
    barrier = threading.Barrier(threads)
    failures = [0] * threads
    crashes: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            for n in range(calls):
                try:
                    func(n)
                except ValueError:
                    failures[index] += 1
        except BaseException as error:
            crashes.append(error)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert crashes == []
    return sum(failures)


def test_threads_every_third_call() -> None:
    monkey = monkey_on()
    pay = payer(monkey, False, every=3, error=ValueError)
    total = 8 * 300
    assert hammer(pay, 8, 300) == total // 3
    assert sorted(struck(monkey)) == list(range(3, total + 1, 3))
    assert monkey.stats() == {
        "experiments_run": total,
        "failures_injected": total // 3,
        "latencies_injected": 0,
        "failure_rate": (total // 3) / total,
    }


def test_threads_strike_the_same_calls_as_one_thread() -> None:
    """Under a rate, call number n gets the stream's nth draw whichever thread makes it."""
    total = 8 * 250
    threaded, single = monkey_on(seed=21), monkey_on(seed=21)
    failures = hammer(payer(threaded, False, rate=0.5, error=ValueError), 8, 250)
    outcomes(payer(single, False, rate=0.5, error=ValueError), total)
    assert failures == len(threaded.injections)
    assert sorted(struck(threaded)) == struck(single)
    assert threaded.stats() == single.stats()


def concurrently(func: Callable[[int], Any], tasks: int) -> list[Any]:
    async def main() -> list[Any]:
        return await asyncio.gather(*(func(n) for n in range(tasks)), return_exceptions=True)

    return asyncio.run(main())


def fetcher(monkey: ChaosMonkey, **options: Any) -> Callable[[int], Any]:
    @monkey.chaos("catalog", **options)
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n

    return fetch


def test_tasks_every_third_call() -> None:
    monkey = monkey_on()
    results = concurrently(fetcher(monkey, every=3, error=ValueError, latency_ms=1), 600)
    assert sum(isinstance(r, ValueError) for r in results) == 200
    assert sorted(struck(monkey)) == list(range(3, 601, 3))
    assert monkey.stats()["experiments_run"] == 600


def test_tasks_strike_the_same_calls_as_one_at_a_time() -> None:
    gathered, sequential = monkey_on(seed=8), monkey_on(seed=8)
    results = concurrently(fetcher(gathered, rate=0.5, error=ValueError, latency_ms=(0.5, 1)), 400)
    fetch = fetcher(sequential, rate=0.5, error=ValueError, latency_ms=(0.5, 1))
    for n in range(400):
        try:
            asyncio.run(fetch(n))
        except ValueError:
            pass
    assert sum(isinstance(r, ValueError) for r in results) == len(gathered.injections)
    assert sorted(pattern(gathered)) == pattern(sequential)


# -- dry run ---------------------------------------------------------------------------------


def test_dry_run_records_but_raises_and_delays_nothing(is_async: bool) -> None:
    """The latency is an hour: were it carried out the test would hang (pytest-timeout),
    so passing proves no delay without asserting a wall-clock bound."""
    monkey = ChaosMonkey(ON, seed=1, log=FaultLog(dry_run=True))
    assert monkey.dry_run
    pay = payer(monkey, is_async, error=ValueError, latency_ms=3_600_000)
    assert outcomes(pay, 3) == ["1 EUR", "2 EUR", "3 EUR"]
    assert [(i.call, i.kind, i.latency_ms, i.dry_run) for i in monkey.injections] == [
        (n, "error", 3_600_000.0, True) for n in (1, 2, 3)
    ]
    assert monkey.stats()["failures_injected"] == 3
    (record,) = monkey.log.faults
    assert record.dry_run
    assert "(dry run)" in monkey.injections[0].describe()


# -- stats, records, listeners, undo ---------------------------------------------------------


def test_stats() -> None:
    monkey = monkey_on()
    failing = payer(monkey, False, every=2, error=ValueError)
    slow = payer(monkey, False, latency_ms=1)
    outcomes(failing, 6)
    outcomes(slow, 3)
    assert monkey.stats() == {
        "experiments_run": 9,
        "failures_injected": 3,
        "latencies_injected": 3,
        "failure_rate": 3 / 9,
    }


def test_fault_records_and_undo() -> None:
    heard: list[Injection] = []
    monkey = ChaosMonkey(ON, seed=1, on_injection=heard.append)

    @monkey.chaos("payments", every=3, error=ValueError)
    def pay() -> str:
        return "paid"

    @monkey.chaos(latency_ms=(1, 2))
    def ship() -> str:
        return "shipped"

    @monkey.chaos("mail")
    def mail() -> str:
        return "mailed"

    first, second, third = monkey.log.faults
    assert [r.kind for r in monkey.log.faults] == ["monkey"] * 3
    assert first.target.endswith("test_fault_records_and_undo.<locals>.pay")
    assert first.details == {"service": "payments", "every": 3, "error": "error"}
    assert second.details == {"service": None, "rate": 1.0, "latency_ms": [1.0, 2.0]}
    assert third.details == {
        "service": "mail",
        "rate": 1.0,
        "error": "one of error, latency",
        "latency_ms": [0.1, 1.0],
    }
    assert all(r.rolled_back_at is None and not r.dry_run for r in monkey.log.faults)

    outcomes(lambda n: pay(), 3)
    ship()
    assert heard == monkey.injections and len(heard) == 2
    assert heard[0].to_json()["fault"] == first.target

    pay.chaos_fault.end()
    assert first.rolled_back_at is not None and second.rolled_back_at is None
    assert outcomes(lambda n: pay(), 3) == ["paid"] * 3

    assert monkey.undo() == []
    assert all(r.rolled_back_at is not None for r in monkey.log.faults)
    assert not ship.chaos_fault.active
    assert (ship(), mail()) == ("shipped", "mailed")
    assert len(monkey.injections) == 2


def test_report_sections() -> None:
    monkey = monkey_on(seed=99)
    assert monkey.report_sections() == []
    outcomes(payer(monkey, False, every=2, error=ValueError), 8)
    ((title, text),) = monkey.report_sections(limit=3)
    assert title == "chaos injections"
    lines = text.splitlines()
    assert lines[0] == "monkey seed 99: 4 calls struck"
    assert lines[1] == "... 1 earlier ones not shown"
    assert lines[2].startswith("call 4 of ") and "error" in lines[2]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"failure_rate": 2}, "failure_rate=2"),
        ({"enabled": "yes"}, "enabled='yes'"),
        ({"latency_min_ms": 5, "latency_max_ms": 1}, "latency_min_ms/latency_max_ms"),
        ({"affected_services": "payments"}, "affected_services='payments'"),
    ],
)
def test_config_rejects_bad_values(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError) as caught:
        ChaosConfig(**settings)
    assert named in str(caught.value)
