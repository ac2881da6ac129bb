"""Atomic output: one file, or a set of files in a folder; all of it, or nothing at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from egress.errors import OutputError

# Written into every output folder: an existing folder is only replaced when it holds
# this marker (or is empty), so `--output ~` can never wipe a folder egress did not write.
MARKER = ".egress-output"
_RENAME_EXCHANGE = 2  # linux/fs.h


def _checked_relpath(relpath: str) -> PurePosixPath:
    path = PurePosixPath(relpath)
    if path.is_absolute() or ".." in path.parts or not path.parts or relpath == MARKER:
        raise ValueError(f"output path {relpath!r} must be relative and inside the folder")
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_tree(root: Path, files: Mapping[str, str]) -> None:
    directories = {root}
    for relpath, text in sorted({**files, MARKER: "written by egress compile\n"}.items()):
        target = root.joinpath(*PurePosixPath(relpath).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        directories.add(target.parent)
        with target.open("w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
        _fsync_dir(directory)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where unsupported."""
    import ctypes  # only needed here; keeps `egress` start-up fast

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in {22, 38, 95}:  # EINVAL, ENOSYS, EOPNOTSUPP: filesystem cannot exchange
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def _replace(staged: Path, out_dir: Path) -> None:
    """Move the staged folder into place; an existing folder is swapped out, then removed."""
    if not out_dir.exists():
        staged.rename(out_dir)
        return
    if _exchange(staged, out_dir):
        shutil.rmtree(staged, ignore_errors=True)  # now holds the previous output
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    old.rmdir()
    out_dir.rename(old)
    try:
        staged.rename(out_dir)
    except OSError:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_replaceable(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise OutputError(
            f"{out_dir} exists and is not a folder; choose another --output or remove it."
        )
    if (out_dir / MARKER).is_file() or not any(out_dir.iterdir()):
        return
    raise OutputError(
        f"{out_dir} is not empty and was not written by egress (no {MARKER} file); "
        "choose another --output or empty that folder."
    )


def write_outputs(files: Mapping[str, str], out_dir: Path) -> None:
    """Write every file under out_dir, replacing a previous egress output only on success.

    The files go to a temporary folder beside out_dir first (fsynced), which is then
    renamed into place, so a failure at any point leaves no partial folder and leaves
    an existing out_dir exactly as it was.

    Raises:
        OutputError: out_dir cannot be written or is a folder egress did not write.
    """
    for relpath in files:
        _checked_relpath(relpath)
    # Write where a symlinked --output points, so the link itself stays as the user made it.
    out_dir = out_dir.resolve() if out_dir.is_symlink() else out_dir.absolute()
    _check_replaceable(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
        staged.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; the result should not be
    except OSError as exc:
        raise OutputError(
            f"cannot create the output folder {out_dir} ({exc.strerror}); "
            "check the path and its permissions."
        ) from exc
    try:
        _write_tree(staged, files)
        _replace(staged, out_dir)
        _fsync_dir(out_dir.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            shutil.rmtree(staged)
        raise OutputError(
            f"cannot write the output folder {out_dir} ({exc.strerror}); nothing was "
            "changed there; check free space and permissions."
        ) from exc


def write_file(path: Path, text: str | Iterable[str]) -> None:
    """Write one file via a temp file in the same folder and a rename: never half a file.

    `text` may be an iterable of pieces, written as they come (large reports stream out).
    A symlink keeps pointing where it did (its target is replaced), and a device, FIFO or
    socket (`-o /dev/null`, `-o /dev/stdout`) is written in place: renaming over it would put
    a regular file where the device was.
    """
    try:
        if path.is_symlink():
            path = path.resolve()
        if path.exists() and not path.is_file() and not path.is_dir():
            with path.open("w", encoding="utf-8", newline="") as stream:
                stream.writelines([text] if isinstance(text, str) else text)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
                stream.writelines([text] if isinstance(text, str) else text)
            Path(temp).replace(path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable path."
        ) from exc
