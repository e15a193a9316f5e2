"""A bounded resource hog, run as a child process by ``pytest_chaos.services.resources``.

    python _hog.py cpu SECONDS         keep one core busy
    python _hog.py memory MB SECONDS   hold MB megabytes (MiB) of resident memory

It prints ``ready`` once the load is in place and exits SECONDS later: the time counts from
when the memory is held, however long a busy machine takes to fill it. The kernel enforces
the bound even if this loop does not: SIGALRM ends it a second later (wall time), and
RLIMIT_CPU kills it after as much CPU time; while the memory is being filled, both allow
BUILD_ALLOWANCE_S more. Standard library only: it runs by file path.
"""

import math
import resource
import signal
import sys
import time

PAGE = 4096
BUILD_ALLOWANCE_S = 60


def main(argv: list[str]) -> None:
    kind, seconds = argv[0], float(argv[-1])
    bound = math.ceil(seconds) + 1
    if kind == "memory":
        bound += BUILD_ALLOWANCE_S
    signal.alarm(bound)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY:
        bound = min(bound, hard - 1)
    resource.setrlimit(resource.RLIMIT_CPU, (bound, bound + 1))
    held = bytearray()
    if kind == "memory":
        held = bytearray(int(argv[1]) * 2**20)
        held[::PAGE] = b"\1" * len(range(0, len(held), PAGE))  # touch every page
        signal.alarm(math.ceil(seconds) + 1)  # held: the time counts from now
    deadline = time.monotonic() + seconds
    print("ready", flush=True)
    if kind == "cpu":
        while time.monotonic() < deadline:
            pass
    else:
        time.sleep(max(0.0, deadline - time.monotonic()))
    del held


if __name__ == "__main__":
    main(sys.argv[1:])
