"""A CSV file as bytes: read once (a clear error for a missing, empty, binary or non-UTF-8 file),
cut at line breaks into pieces of about ``PIECE_BYTES`` that are parsed one after the other with a
progress bar on a terminal (a large import says how far it is), and the longest line found when
pyarrow refuses a row longer than its read block.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ntrader.errors import InputError


def read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"CSV file not found: {path}", hint="check the path") from None
    except IsADirectoryError:
        raise InputError(f"not a file: {path}", hint="give the path of a CSV file") from None
    except OSError as exc:
        raise InputError(
            f"cannot read {path}: {exc.strerror or exc}", hint="check the path"
        ) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data[:4096].strip() and not data.strip():
        raise InputError(f"{path}: the file is empty", hint="export the bars again")
    head = data[:65536]
    looks_binary = b"\x00" in head
    if not looks_binary:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            looks_binary = exc.start < len(head) - 4  # a cut multi-byte char at the end is fine
    if looks_binary:
        raise InputError(
            f"{path}: not a CSV text file (binary data or not UTF-8 text)",
            hint="give a UTF-8 (or ASCII) CSV export; re-save it as 'CSV UTF-8' if needed",
        )
    return data


BLOCK_BYTES = 4 << 20  # pyarrow's read block: no CSV row may be longer


def longest_line(data: bytes) -> tuple[int, int]:
    """(1-based line number, length in bytes) of the longest line of ``data``."""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    bounds = np.concatenate(([-1], ends, [len(data)]))
    lengths = np.diff(bounds) - 1
    i = int(np.argmax(lengths))
    return i + 1, int(lengths[i])


PIECE_BYTES = 64 << 20  # a larger file is parsed in pieces of about this size, with progress


def pieces(data: bytes) -> list[tuple[memoryview, int]]:
    """``data`` cut at line breaks into pieces of about ``PIECE_BYTES``: (piece, its first file
    line). pyarrow reads a line break as the end of a row even inside quotes
    (``newlines_in_values`` off), so the cuts change nothing of what is parsed."""
    view, out, start, line = memoryview(data), [], 0, 1
    while start < len(data):
        cut = data.find(b"\n", min(start + PIECE_BYTES, len(data)) - 1)
        end = len(data) if cut < 0 else cut + 1
        out.append((view[start:end], line))
        line += data.count(b"\n", start, end)
        start = end
    return out or [(view, 1)]


class ParseProgress:
    """A bytes bar for parsing a file of more than one piece, on a terminal only."""

    def __init__(self, size: int, path: Path) -> None:
        self.bar = None
        if size > PIECE_BYTES and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=size, unit="B", unit_scale=True, desc=f"parse {path.name}", leave=False
            )

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __enter__(self) -> ParseProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
