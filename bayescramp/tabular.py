"""Reading and writing tables (CSV, gzip CSV, Parquet): formats, atomic writes, temporaries.

Outputs are written to a hidden temporary beside the destination and renamed onto it only
when complete, so a file at the destination is always complete. Temporaries are named
``.<name>.bayescramp-<pid>-<host>-<random>.partial``: a run killed outright (``kill -9``)
leaves one behind, and a later run in the same folder (or ``bayescramp clean``) removes
those whose process no longer runs on this host.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd

from ._errors import InputError

__all__ = ["table_format", "input_format", "atomic_path", "write_table", "TABLE_SUFFIXES", "check_not_input",
           "stale_temporaries", "remove_stale_temporaries", "temporary_folder"]

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
# the process umask, read once: finished files get the usual permissions, not mkstemp's 0600
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40] or "host"
_TEMPORARY = re.compile(r"^\..*\.bayescramp-(?P<pid>\d+)-(?P<host>[A-Za-z0-9]*)-[A-Za-z0-9_]+\.partial$")
# first bytes of formats that are not plain text
_MAGIC = {b"PAR1": "parquet", b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz",
          b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip"}


def table_format(path: str | Path) -> str:
    """``"csv"``, ``"csv.gz"`` or ``"parquet"`` from the file name (any case); :class:`InputError` otherwise.

    Examples
    --------
    >>> table_format("SURVEY.CSV.GZ"), table_format("scores.parquet")
    ('csv.gz', 'parquet')
    """
    name = str(path).lower()
    for suffix in (".csv.gz", ".csv", ".parquet"):
        if name.endswith(suffix):
            return suffix[1:]
    raise InputError(f"{path}: unknown table format; expected a name ending in .csv, .csv.gz or .parquet.")


def input_format(path: str | Path) -> str:
    r"""The format of an existing input file: the name says CSV or Parquet, the content says whether it is gzipped.

    A ``.parquet`` name must hold Parquet; a ``.csv`` or ``.csv.gz`` name is CSV text, gzip-compressed
    when its first bytes say so (whatever the name says). Other compressions are refused.

    Examples
    --------
    >>> import gzip, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "survey.csv"
    ...     _ = path.write_bytes(gzip.compress(b"fatigue\nyes\n"))
    ...     input_format(path)
    'csv.gz'
    """
    path = Path(path)
    named = table_format(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
    found = next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), "text")
    if named == "parquet":
        return named
    if found == "gzip":
        return "csv.gz"
    if found == "parquet":
        raise InputError(f"{path}: holds Parquet data, not CSV text; expected CSV (or rename the file to "
                         f"{path.name.split('.')[0]}.parquet).")
    if found != "text":
        raise InputError(f"{path}: is {found}-compressed; expected CSV text, plain or gzip-compressed (decompress it, "
                         "or compress it with gzip).")
    return "csv"


def check_not_input(output: str | Path, inputs: Sequence[str | Path]) -> None:
    """Refuse an output path that is, or would replace, one of the inputs.

    The same file is found through any spelling: relative or absolute paths, ``..``, symbolic
    and hard links (compared by inode when the output exists), and letter case (compared
    case-folded when it does not, which is what a case-insensitive file system does). An output
    folder holding an input, or an output inside an input folder, is refused too.

    Raises
    ------
    InputError
        Naming the output and the input it would overwrite.

    Examples
    --------
    >>> check_not_input("scores.csv", ["survey.csv"])
    """
    output = Path(output)
    out_real = os.path.realpath(output)
    for item in inputs:
        item = Path(item)
        in_real = os.path.realpath(item)
        if output.exists() and item.exists():
            same = os.path.samefile(output, item)
        else:
            same = os.path.normcase(out_real).casefold() == os.path.normcase(in_real).casefold()
        if same:
            raise InputError(f"{output}: is the input file {item} (the same file under another name); expected a "
                             "different output path (the input is never overwritten).")
        if output.is_dir() and _inside(in_real, out_real):
            raise InputError(f"{output}: is a folder holding the input {item}, and writing the output would replace "
                             "it; expected an output path outside the input.")
        if item.is_dir() and _inside(out_real, in_real):
            raise InputError(f"{output}: is inside the input folder {item}; expected an output path outside the "
                             "input (the input is never changed).")


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.normcase(path).casefold(), os.path.normcase(folder).casefold()
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate it: never guess there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def stale_temporaries(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """Temporaries of bayescramp runs in ``folder``: ``(stale, in use)``.

    Stale ones were left by a process of this host that no longer runs (a ``kill -9`` or a
    power cut); the others belong to a running process or to another host (a shared file
    system), and are left alone.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     stale_temporaries(folder)
    ([], [])
    """
    stale, in_use = [], []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return [], []
    for name in names:
        match = _TEMPORARY.match(name)
        if match is None:
            continue
        mine = match["host"] == _HOST
        (stale if mine and not _alive(int(match["pid"])) else in_use).append(Path(folder) / name)
    return stale, in_use


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the stale temporaries of :func:`stale_temporaries`; return what was removed.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     remove_stale_temporaries(folder)
    []
    """
    removed = []
    for path in stale_temporaries(folder)[0]:
        try:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue
        removed.append(path)
    return removed


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}.bayescramp-{os.getpid()}-{_HOST}-"


def _cannot_write(path: Path, error: OSError) -> InputError:
    reason = error.strerror or str(error).split(". Detail: ")[-1]
    return InputError(f"{path}: cannot be written ({reason}); expected a writable folder and a free output path "
                      "(check the folder's permissions and free space).")


@contextmanager
def atomic_path(path: str | Path, *, folder: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A failure or interruption leaves nothing at ``path`` (and removes the temporary). Stale
    temporaries of killed runs in the same folder are removed first. Errors writing the
    temporary name ``path``, not the temporary.

    Parameters
    ----------
    path : str or Path
        The destination.
    folder : bool
        Yield a temporary folder (an output made of parts) instead of a file; an existing
        folder at ``path`` is replaced.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     with atomic_path(Path(directory) / "out.txt") as temporary:
    ...         _ = temporary.write_text("done")
    ...     sorted(p.name for p in Path(directory).iterdir())
    ['out.txt']
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{path}: the output folder {path.parent} does not exist; expected an existing folder "
                         "(create it first).")
    if path.is_dir() and not folder:
        raise InputError(f"{path}: is an existing folder; expected a file name for the output (remove the folder or "
                         "choose another name).")
    remove_stale_temporaries(path.parent)
    try:
        if folder:
            temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temporary_prefix(path), suffix=".partial"))
        else:
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path), suffix=".partial")
            os.close(handle)
            temporary = Path(name)
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        try:
            yield temporary
        except OSError as error:
            if temporary.name in str(error) or temporary.name in str(getattr(error, "filename", "") or ""):
                raise _cannot_write(path, error) from None
            raise
        try:
            os.chmod(temporary, (0o777 if folder else 0o666) & ~_UMASK)
            _replace(temporary, path)
        except OSError as error:
            raise _cannot_write(path, error) from None
    finally:
        if temporary.is_dir() and not temporary.is_symlink():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)


@contextmanager
def temporary_folder(beside: str | Path) -> Iterator[Path]:
    """A hidden working folder beside ``beside``, named like its temporaries, always removed at the end.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     with temporary_folder(Path(directory) / "out.csv") as folder:
    ...         folder.is_dir()
    ...     sorted(Path(directory).iterdir())
    True
    []
    """
    beside = Path(beside)
    try:
        folder = Path(tempfile.mkdtemp(dir=beside.parent, prefix=_temporary_prefix(beside), suffix=".partial"))
    except OSError as error:
        raise _cannot_write(beside, error) from None
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _replace(source: Path, destination: Path) -> None:
    """Move ``source`` onto ``destination``; an existing folder there is set aside, then removed."""
    if destination.is_dir() and not destination.is_symlink():
        old = Path(tempfile.mkdtemp(dir=destination.parent, prefix=_temporary_prefix(destination),
                                    suffix=".partial"))
        os.replace(destination, old)
        try:
            os.replace(source, destination)
        finally:
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, destination)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV, gzip CSV or Parquet (by extension), atomically.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     write_table(pd.DataFrame({"a": [1]}), Path(directory) / "t.csv").name
    't.csv'
    """
    kind = table_format(path)
    with atomic_path(path) as temporary:
        if kind == "parquet":
            frame.to_parquet(temporary, index=False)
        else:
            frame.to_csv(temporary, index=False, compression="gzip" if kind == "csv.gz" else None)
    return Path(path)
