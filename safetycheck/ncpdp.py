"""NCPDP DUR codes (439-E4 reason for service, 528-FS clinical significance) for every warning, from data/."""

import csv
from dataclasses import dataclass
from pathlib import Path

from .errors import DataFileError
from .models import SEVERITY_ORDER

REASON_FILE = "ncpdp_reason_for_service.csv"
SIGNIFICANCE_FILE = "ncpdp_clinical_significance.csv"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class DurCodes:
    """Warning code -> 439-E4 and severity -> 528-FS, each row with its source."""

    reasons: dict
    significance: dict

    def for_warning(self, warning: dict) -> dict:
        """The additive `ncpdp` object of one warning (contract: never replaces a v1 field)."""
        reason = self.reasons.get(warning.get("code"))
        significance = self.significance.get(warning.get("severity"), "")
        # An unmapped code is filed as MS (missing information) so it is never silently unfiled.
        return {"reason_for_service": reason or "MS", "clinical_significance": significance}


def _rows(path: Path, header: list[str], problems: list[str]):
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != header:
            problems.append(f"{path.name}: header: expected {','.join(header)} (fix: use that header)")
            return
        for number, row in enumerate(reader, start=2):
            if None in row or not (row.get("source") or "").strip():
                problems.append(f"{path.name}: row {number}: every row needs all columns and a source")
                continue
            yield number, {k: v.strip() for k, v in row.items()}


def load(data_dir: str | Path | None = None) -> DurCodes:
    """Read and validate both tables; a bad row stops start-up naming file, row and fix."""
    base = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    problems: list[str] = []
    reasons: dict = {}
    for number, row in _rows(base / REASON_FILE, ["code", "reason_for_service", "meaning", "source", "note"],
                             problems):
        code, reason = row["code"], row["reason_for_service"]
        if not (len(reason) == 2 and reason.isalnum() and reason.isupper()):
            problems.append(f"{REASON_FILE}: row {number}: reason_for_service '{reason}' is not a 439-E4 code "
                            "(fix: two capital letters, e.g. DD)")
        elif code in reasons:
            problems.append(f"{REASON_FILE}: row {number}: duplicate code {code} (fix: one row per code)")
        else:
            reasons[code] = reason
    significance: dict = {}
    for number, row in _rows(base / SIGNIFICANCE_FILE, ["severity", "clinical_significance", "meaning", "source"],
                             problems):
        if row["severity"] not in SEVERITY_ORDER:
            problems.append(f"{SIGNIFICANCE_FILE}: row {number}: unknown severity {row['severity']} "
                            f"(fix: one of {sorted(SEVERITY_ORDER)})")
        elif row["clinical_significance"] not in ("", "1", "2", "3"):
            problems.append(f"{SIGNIFICANCE_FILE}: row {number}: 528-FS is blank, 1, 2 or 3")
        else:
            significance[row["severity"]] = row["clinical_significance"]
    missing = sorted(set(SEVERITY_ORDER) - set(significance))
    if missing and not problems:
        problems.append(f"{SIGNIFICANCE_FILE}: severities {missing} have no row (fix: add them)")
    if problems:
        raise DataFileError(problems)
    return DurCodes(reasons, significance)

