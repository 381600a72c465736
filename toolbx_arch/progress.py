"""Progress for long work: a rich status line on a terminal (create), and for pulls skopeo's own
progress bars on a terminal or one line per layer otherwise (so a CI log shows what happened)."""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator, Optional


@contextlib.contextmanager
def status(title: str) -> Iterator[Optional[Callable[[str], None]]]:
    """Yields ``update(line)``, which shows ``title: line`` with a spinner while the block runs;
    yields None when stderr is not a terminal (nothing to show: callers can skip the work)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    with console.status(title) as st:
        yield lambda line: st.update(f"{title}: {line}" if line else title)


def lines(title: str) -> Callable[[str], None]:
    """Print ``title`` on stderr and return a printer for the progress lines that follow, each
    with tbx's prefix (for logs: no terminal needed)."""
    from .output import note as say


    say(title)
    return say


@contextlib.contextmanager
def pull(title: str) -> Iterator[dict]:
    """Keyword arguments for ``images.pull``. On a terminal a rich bar with bytes, percentage,
    speed and time left; otherwise the title and one line per layer on stderr."""
    if not sys.stderr.isatty():
        yield {"on_line": lines(title)}
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    console = Console(stderr=True, highlight=False)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TaskProgressColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=False) as bar:
        task = bar.add_task(title, total=None)

        def on_bytes(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield {"on_bytes": on_bytes}
