"""Progress for long work (pulls, create): a rich status line on a terminal, nothing otherwise."""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator


@contextlib.contextmanager
def status(title: str) -> Iterator[Callable[[str], None]]:
    """Yields ``update(line)``; shows ``title: line`` with a spinner while the block runs."""
    if not sys.stderr.isatty():
        yield lambda line: None
        return
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    with console.status(title) as st:
        yield lambda line: st.update(f"{title}: {line}" if line else title)
