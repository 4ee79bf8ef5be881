"""A large import says how far it is (issue 16 §1): a file of more than ``PIECE_BYTES`` is parsed
in pieces cut at line breaks, with a bytes bar on a terminal; the pieces change nothing of what is
read — the same bars, and the same problems at the same file lines."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from bench.gen import minute_csv

from ntrader.errors import CsvValidationError
from ntrader.importing import csvfile
from ntrader.importing.reader import read_csv_bars

from .conftest import run_on_pty

MINUTE = 60_000_000_000
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _read(path, monkeypatch, piece_bytes):
    monkeypatch.setattr(csvfile, "PIECE_BYTES", piece_bytes)
    try:
        return read_csv_bars(path, bar_interval_ns=MINUTE)
    except CsvValidationError as exc:
        return exc.problems


@pytest.mark.parametrize("piece_bytes", [1, 997, 50_000])
def test_pieces_read_the_same_bars_as_one_piece(tmp_path, monkeypatch, piece_bytes):
    path = tmp_path / "bars.csv"
    minute_csv(path, days=3)  # 4,320 rows, ~210 KB
    whole = _read(path, monkeypatch, 1 << 40)
    cut = _read(path, monkeypatch, piece_bytes)
    assert len(csvfile.pieces(path.read_bytes())) > 1
    for col in ("ts_event", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(cut.bars, col), getattr(whole.bars, col))
    assert len(whole.bars.ts_event) == 4320


@pytest.mark.parametrize("piece_bytes", [1, 613, 50_000])
def test_pieces_report_the_same_problems_at_the_same_lines(tmp_path, monkeypatch, piece_bytes):
    path = tmp_path / "bad.csv"
    minute_csv(path, days=1)
    lines = path.read_text().splitlines()
    lines[56] = "2024-01-01T00:55:00Z,1.00,1.00"  # line 57: 3 fields
    lines[900] = lines[900].replace(",", ",x", 1)  # line 901: a price that is no number
    lines[1200] = "2024-01-01T19:59:00Z,1,1,1,1,1,1"  # line 1201: 7 fields
    path.write_text("\n".join(lines) + "\n")
    whole = _read(path, monkeypatch, 1 << 40)
    cut = _read(path, monkeypatch, piece_bytes)
    assert isinstance(whole, list) and cut == whole
    named = " ".join(str(p) for p in whole)
    assert "57" in named and "901" in named and "1201" in named


def test_a_large_import_shows_its_parsing_progress_on_a_terminal(tmp_path):
    big = tmp_path / "big.csv"
    rows = minute_csv(big, days=1000)  # 1.44M rows
    assert big.stat().st_size > csvfile.PIECE_BYTES
    code, out, stdout = run_on_pty(
        ["make", "-s", "import", f"CSV={big}", "SYMBOL=AAPL", f"CATALOG={tmp_path / 'c'}"],
        {**os.environ, "NTRADER_RUNS": str(tmp_path / "runs")},
    )
    assert code == 0, out.decode(errors="replace")[-3000:]
    text = ANSI.sub("", out.decode(errors="replace"))
    assert "parse big.csv:" in text and "100%" in text  # the bar was drawn and finished
    assert f"{rows:,}" in stdout.decode()  # and the import read every row
