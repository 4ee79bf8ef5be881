"""Where and whether the catalog may write: path containment, bad roots, write permission.

Every path the catalog writes, renames, creates or removes passes :func:`inside` first: on local
disk it must resolve (``os.path.realpath``: symlinks and ``..`` followed) to the catalog root or
below it; on S3 its key must be normalized (no ``..``, ``.`` or empty part) and under the prefix.
Anything else is a ``SystemFailure`` naming the path, raised before the path is opened: defense in
depth behind the input validators of ``ntrader.symbols``, which keep bad names out in the first
place. A root that is a file is an input error; a writer without write permission gets one
message that says so (readers need no permission beyond reading).
"""

from __future__ import annotations

import errno
import os
import posixpath
from pathlib import Path, PurePath

from ntrader.errors import InputError, SystemFailure

_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def check_local_root(root: Path) -> None:
    """``InputError`` when the catalog root exists but is not a directory (or sits in a file)."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return  # a new catalog: the first writer creates it
    except NotADirectoryError:
        raise InputError(
            f"CATALOG={root} is inside a file, not a directory",
            hint="point CATALOG at a catalog directory (or at a path that does not exist yet)",
        ) from None
    except OSError as exc:
        raise SystemFailure(
            f"cannot look at catalog {root}: {exc.strerror or exc}",
            hint="check the path and its permissions",
        ) from exc
    if not os.path.isdir(root):
        kind = "a file" if os.path.isfile(root) else f"not a directory (mode {oct(st.st_mode)})"
        raise InputError(
            f"CATALOG={root} is {kind}, not a directory",
            hint="point CATALOG at a catalog directory (or at a path that does not exist yet)",
        )


class LocalFence:
    """Containment check for a local catalog root (its real path is resolved once)."""

    def __init__(self, root: PurePath) -> None:
        self.root = str(root)
        self._real = os.path.realpath(root)

    def inside(self, path: PurePath | str) -> Path:
        """``path`` as a ``Path`` if it resolves inside the root, else ``SystemFailure``."""
        real = os.path.realpath(path)
        if real != self._real and not real.startswith(self._real.rstrip(os.sep) + os.sep):
            raise SystemFailure(
                f"refusing to write {path}: it resolves to {real}, outside the catalog "
                f"{self.root} (a symlink or '..' in the path)",
                hint="nothing was written; remove the symlink or report the name that made it",
            )
        return Path(path)


class KeyFence:
    """Containment check for an S3 prefix (``bucket/prefix``)."""

    def __init__(self, root: PurePath) -> None:
        self.root = str(root).rstrip("/")

    def inside(self, path: PurePath | str) -> PurePath:
        key = str(path)
        parts = key.split("/")
        normal = posixpath.normpath(key) == key and not any(p in ("", ".", "..") for p in parts)
        if not normal or not (key == self.root or key.startswith(self.root + "/")):
            raise SystemFailure(
                f"refusing to write s3://{key}: not a normalized key under s3://{self.root}",
                hint="nothing was written; report the name that made it",
            )
        return PurePath(path)


def is_not_writable(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and (
        isinstance(exc, PermissionError) or exc.errno in _NOT_WRITABLE
    )


def not_writable(url: str, exc: BaseException) -> SystemFailure:
    """The error of a writer that may not write the catalog (read-only, another owner)."""
    what = getattr(exc, "strerror", None) or str(exc)
    where = getattr(exc, "filename", None)
    return SystemFailure(
        f"catalog {url} is not writable by this user ({what}{f': {where}' if where else ''})",
        hint="reading needs no write access, writing does: ask the catalog's owner for write "
        "permission (group-writable directories), or write to your own CATALOG=…",
    )
