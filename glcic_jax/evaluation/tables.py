"""Result tables as CSV files: write rows of dicts, read them back with numbers parsed, merge.

Every evaluation output (summaries, per-image metrics, paired differences)
is a list of flat dicts, so one reader and one writer serve them all, and a
figure can be redrawn from a CSV alone.
"""

from __future__ import annotations

import csv
import pathlib
from collections.abc import Mapping, Sequence


def write_csv(path, rows: Sequence[Mapping]) -> None:
    """Rows of dicts -> CSV (columns in first-seen order; floats with repr precision)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def merge_rows(old: Sequence[Mapping], new: Sequence[Mapping], key_fields: Sequence[str]):
    """`old` rows whose key (the values of `key_fields`) no new row has, then `new`.

    Lets evaluate.py add one hole set's or one step's rows to an existing CSV
    and replace a re-evaluated step's rows instead of duplicating them.
    """
    new_keys = {tuple(r.get(k) for k in key_fields) for r in new}
    return [r for r in old if tuple(r.get(k) for k in key_fields) not in new_keys] + list(new)


def read_csv(path) -> list[dict]:
    """CSV -> rows of dicts, numbers parsed (int, then float), the rest kept as str."""

    def parse(v: str):
        for kind in (int, float):
            try:
                return kind(v)
            except ValueError:
                pass
        return v

    with open(path, newline="", encoding="utf-8") as f:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]
