"""Stop long loops cleanly: the first Ctrl-C or SIGTERM (what `kill` and DVC send) only raises a flag."""
from __future__ import annotations

import signal


class StopRequest:
    """First Ctrl-C or SIGTERM: the loop finishes its unit of work, saves its state, stops.

    A second signal gets the previous handler, so a stuck process can still be stopped at once.
    """

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handle(self, signum, frame):
        self.requested = True
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __enter__(self) -> "StopRequest":
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = {}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
