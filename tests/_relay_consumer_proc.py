"""A relay consumer process for the fault tests: it delivers the whole feed to a receiver that
works 5 ms per event and appends a line per event to a file, until it is killed.

python -m tests._relay_consumer_proc REDIS_URL PREFIX NAME OUTFILE [numbers]

By default a line is the event's item. With ``numbers`` the consumer subscribes to 005930's 0E
(so a real relay registers it), a line is the event's ``ask_total`` (the test's frame number),
and the file also gets ``# life`` when the process starts and ``# <kind>`` for every relay notice.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from kiwoom_rt.relay import RelaySession


def main() -> None:
    url, prefix, name, path = sys.argv[1:5]
    numbers = sys.argv[5:6] == ["numbers"]
    out = open(path, "a", buffering=1)  # noqa: SIM115 (kept open until the process is killed)
    work = threading.Event()

    def receiver(item: str, event: Any) -> None:
        work.wait(0.005)  # the strategy's work
        out.write(f"{event.ask_total}\n" if numbers else item + "\n")

    def notice(session: Any, kind: str, detail: Any) -> None:
        out.write(f"# {kind}\n")

    session = RelaySession(url, prefix=prefix, name=name, start_from="last", receive="all", silence=30.0)
    session.on_real.connect(receiver)
    if numbers:
        out.write("# life\n")
        session.on_relay.connect(notice)
        session.subscribe(["005930"], ["0E"])
    session.start()
    print("started", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
