"""Progress for long work (pulls, create): a rich status line on a terminal, nothing otherwise."""

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
