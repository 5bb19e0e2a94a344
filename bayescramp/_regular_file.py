"""Read a small model file (prior TOML, BIF network) only when it is a regular file, and only so much.

Devices, pipes and folders are refused *before* anything is read from them (opening is
non-blocking, so a FIFO or ``/dev/stdin`` cannot hang the caller), and the bytes read are
capped, so ``/dev/zero`` or a runaway file cannot fill memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ._errors import BayescrampError

__all__ = ["read_regular_file", "MAX_MODEL_FILE_BYTES"]

#: Largest prior or network file read (the bundled prior files are under 64 KiB; alarm.bif is 30 KiB).
MAX_MODEL_FILE_BYTES = 64 * 1024 * 1024

_KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a pipe"), (stat.S_ISSOCK, "a socket")]


def read_regular_file(path: str | Path, *, what: str, error: type[BayescrampError],
                      max_bytes: int = MAX_MODEL_FILE_BYTES) -> bytes:
    """The bytes of ``path``, refusing anything that is not a regular file, and files over ``max_bytes``.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file should be, for messages (``"a .toml prior file"``).
    error : type
        The :class:`~bayescramp._errors.BayescrampError` subclass raised.
    max_bytes : int
        Size cap; a larger file is refused (at most ``max_bytes + 1`` bytes are read).

    Raises
    ------
    BayescrampError
        Of type ``error``: one sentence naming the path, what it is and what was expected.

    Examples
    --------
    >>> from bayescramp._errors import SpecError
    >>> read_regular_file("/dev/zero", what="a .toml prior file", error=SpecError)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescramp._errors.SpecError: /dev/zero: is a character device, not a regular file; expected a .toml prior file ...
    """
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error(f"{path}: no such file; expected {what}.") from None
    except OSError as problem:
        raise error(f"{path}: cannot open it ({problem.strerror}); expected {what}.") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = next((name for test, name in _KINDS if test(mode)), "not a file")
        raise error(f"{path}: is {kind}, not a regular file; expected {what} (devices, pipes and folders are "
                    "not read).")
    with os.fdopen(descriptor, "rb") as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as problem:
            raise error(f"{path}: cannot read it ({problem.strerror}); expected {what}.") from None
    if len(data) > max_bytes:
        raise error(f"{path}: larger than {max_bytes:,} bytes; expected {what} (model files are small; is this the "
                    "right file?).")
    return data
