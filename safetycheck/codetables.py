"""Small code tables (CSV, one source per row) read for start-up validation: every problem named, none raised."""

import csv
from pathlib import Path


def sourced_rows(path: Path, header: list[str], problems: list[str]):
    """("file: row n", stripped row) for each well-formed row that names its source; a missing file, another
    header, a row of the wrong width or without a source goes to `problems` instead."""
    if not path.is_file():
        problems.append(f"{path.name}: missing (fix: restore data/{path.name} from the checkout)")
        return
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != header:
            problems.append(f"{path.name}: header: expected {','.join(header)} (fix: use that header)")
            return
        for number, row in enumerate(reader, start=2):
            where = f"{path.name}: row {number}"
            if None in row or None in row.values():
                problems.append(f"{where}: wrong number of fields (fix: quote fields that contain commas)")
            elif not row["source"].strip():
                problems.append(f"{where}: no source (fix: name where the code comes from)")
            else:
                yield where, {k: v.strip() for k, v in row.items()}
