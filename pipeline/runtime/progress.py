"""One progress display for every long loop: a rich bar in a terminal, plain lines in logs (CI)."""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class StepProgress:
    def __init__(self, description: str, total: int, completed: int = 0, plain_every_s: float = 15.0):
        self.console = Console()
        self.description = description
        self.total = total
        self.completed = completed
        self.plain_every_s = plain_every_s
        self._last_plain = 0.0
        self._started = time.monotonic()
        self._completed_at_start = completed
        self._status = ""
        self._bar = None
        if self.console.is_terminal:
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"),
                                 TimeRemainingColumn(), console=self.console)
            self._task = self._bar.add_task(description, total=total, completed=completed, status="")

    def __enter__(self) -> "StepProgress":
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
        else:
            self._print_plain()

    def update(self, completed: int, status: str = "") -> None:
        self.completed, self._status = completed, status
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, status=status)
        elif time.monotonic() - self._last_plain >= self.plain_every_s:
            self._print_plain()

    def log(self, message: str) -> None:
        self.console.print(message, highlight=False)

    def _print_plain(self) -> None:
        self._last_plain = time.monotonic()
        self.console.print(f"{self.description} {self.completed}/{self.total} {self._status}{self._pace()}",
                           highlight=False, soft_wrap=True)

    def _pace(self) -> str:
        """Elapsed time and, once there is a rate to go by, the time left (the rich bar shows its own)."""
        elapsed = time.monotonic() - self._started
        done = self.completed - self._completed_at_start
        text = f" [{_clock(elapsed)} elapsed"
        if done > 0 and self.completed < self.total:
            text += f", about {_clock((self.total - self.completed) * elapsed / done)} left"
        return text + "]"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
