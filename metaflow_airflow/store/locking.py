"""A lock between processes on this machine, on a folder: for the local manifest store's
version folders and Metaflow's production-token folder. Its own module so that the flow process
takes it without importing the store's client."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def folder_lock(folder: str) -> Iterator[None]:
    """An exclusive lock between processes on this machine, held on ``folder`` itself."""
    os.makedirs(folder, exist_ok=True)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
