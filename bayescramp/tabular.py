"""Reading and writing tables (CSV, gzip CSV, Parquet), with atomic writes."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from ._errors import InputError

__all__ = ["table_format", "atomic_path", "write_table", "TABLE_SUFFIXES"]

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
# the process umask, read once: finished files get the usual permissions, not mkstemp's 0600
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def table_format(path: str | Path) -> str:
    """``"csv"``, ``"csv.gz"`` or ``"parquet"`` from the file name; :class:`InputError` otherwise."""
    name = str(path).lower()
    for suffix in (".csv.gz", ".csv", ".parquet"):
        if name.endswith(suffix):
            return suffix[1:]
    raise InputError(f"{path}: unknown table format; expected a name ending in .csv, .csv.gz or .parquet.")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A failure or interruption leaves nothing at ``path`` (and removes the temporary file).
    """
    path = Path(path)
    if not path.parent.exists():
        raise InputError(f"{path}: the output folder {path.parent} does not exist; expected an existing folder "
                         "(create it first).")
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV, gzip CSV or Parquet (by extension), atomically."""
    kind = table_format(path)
    with atomic_path(path) as temporary:
        if kind == "parquet":
            frame.to_parquet(temporary, index=False)
        else:
            frame.to_csv(temporary, index=False, compression="gzip" if kind == "csv.gz" else None)
    return Path(path)
