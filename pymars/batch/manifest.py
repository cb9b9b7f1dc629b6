"""The results manifest of a batch job: OUT_DIR/manifest.csv, one row per input, always a valid file.

What it is for: the record of a job (what was made, how large, how good, how
long, what failed and why) and its resume point: a second run skips inputs
whose row is ``ok`` and whose output exists. The file is rewritten whole
through :func:`pymars.clio.atomic_write` every few results and at the end
(an interrupted job leaves the last complete version, never a torn one).
It must not write anything but the manifest.

Example:
    >>> import tempfile
    >>> m = Manifest(Path(tempfile.mkdtemp()) / "manifest.csv")
    >>> m.record({"input": "/a.png", "output": "/o/a.pmrs", "status": "failed", "error": "bad"}); m.flush()
    >>> Manifest(m.path).rows["/a.png"]["error"]
    'bad'
"""
from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

from pymars.clio import atomic_write

#: The manifest's name inside OUT_DIR.
MANIFEST = "manifest.csv"
#: Its columns: the PDS identity ones are filled for PDS products only.
FIELDS = ("input", "output", "status", "bytes", "psnr", "seconds", "error",
          "instrument_id", "planet_day_number", "sequence_id", "product_id", "worker")


class Manifest:
    """Rows by input path (insertion order kept), loaded from ``path`` if it exists, rewritten atomically.

    ``flush_every``: rewrite after this many new rows at least (or a 20th of
    the rows, so a job of 100 000 inputs rewrites about 20 times, not 10 000),
    and at most ``seconds`` apart.
    """

    def __init__(self, path: str | os.PathLike, flush_every: int = 8, seconds: float = 10.0):
        self.path = Path(path)
        self.rows: dict[str, dict] = {}
        self.flush_every, self.seconds = flush_every, seconds
        self._new, self._last = 0, time.monotonic()
        if self.path.is_file():
            with open(self.path, newline="") as f:
                for row in csv.DictReader(f):
                    if row.get("input"):
                        self.rows[row["input"]] = {k: row.get(k, "") or "" for k in FIELDS}

    def done(self, input_path: str, output: str | os.PathLike) -> bool:
        """True when ``input_path`` has an ``ok`` row for ``output`` and that file exists (resume skips it)."""
        row = self.rows.get(input_path)
        return bool(row) and row["status"] == "ok" and row["output"] == str(output) and Path(output).is_file()

    def record(self, row: dict) -> None:
        """Add or replace the row of ``row["input"]``; rewrite the file when enough rows or time have passed."""
        self.rows[row["input"]] = {k: "" if row.get(k) is None else row[k] for k in FIELDS}
        self._new += 1
        if self._new >= max(self.flush_every, len(self.rows) // 20) or time.monotonic() - self._last > self.seconds:
            self.flush()

    def flush(self) -> None:
        """Rewrite the whole file atomically (a reader sees the old or the new version, never a mix)."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(self.rows.values())
        atomic_write(self.path, buf.getvalue().encode())
        self._new, self._last = 0, time.monotonic()
