"""A relay consumer process for the fault tests: it delivers the whole feed to a receiver that
works 5 ms per event and appends each event's item to a file, until it is killed.

python -m tests._relay_consumer_proc REDIS_URL PREFIX NAME OUTFILE
"""

from __future__ import annotations

import sys
import threading

from kiwoom_rt.relay import RelaySession


def main() -> None:
    url, prefix, name, path = sys.argv[1:5]
    out = open(path, "a", buffering=1)  # noqa: SIM115 (kept open until the process is killed)
    work = threading.Event()

    def receiver(item: str, event: object) -> None:
        work.wait(0.005)  # the strategy's work
        out.write(item + "\n")

    session = RelaySession(url, prefix=prefix, name=name, start_from="last", receive="all", silence=30.0)
    session.on_real.connect(receiver)
    session.start()
    print("started", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
