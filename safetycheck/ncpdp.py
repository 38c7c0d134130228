"""NCPDP DUR codes (439-E4 reason for service, 528-FS clinical significance) for every warning, from data/."""

from dataclasses import dataclass
from pathlib import Path

from .codetables import sourced_rows
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


def load(data_dir: str | Path | None = None) -> DurCodes:
    """Read and validate both tables; a bad row stops start-up naming file, row and fix."""
    base = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    problems: list[str] = []
    reasons: dict = {}
    reason_header = ["code", "reason_for_service", "meaning", "source", "note"]
    for where, row in sourced_rows(base / REASON_FILE, reason_header, problems):
        code, reason = row["code"], row["reason_for_service"]
        if not (len(reason) == 2 and reason.isalnum() and reason.isupper()):
            problems.append(f"{where}: reason_for_service '{reason}' is not a 439-E4 code "
                            "(fix: two capital letters, e.g. DD)")
        elif code in reasons:
            problems.append(f"{where}: duplicate code {code} (fix: one row per code)")
        else:
            reasons[code] = reason
    significance: dict = {}
    significance_header = ["severity", "clinical_significance", "meaning", "source"]
    for where, row in sourced_rows(base / SIGNIFICANCE_FILE, significance_header, problems):
        if row["severity"] not in SEVERITY_ORDER:
            problems.append(f"{where}: unknown severity {row['severity']} "
                            f"(fix: one of {sorted(SEVERITY_ORDER)})")
        elif row["clinical_significance"] not in ("", "1", "2", "3"):
            problems.append(f"{where}: 528-FS is blank, 1, 2 or 3")
        else:
            significance[row["severity"]] = row["clinical_significance"]
    missing = sorted(set(SEVERITY_ORDER) - set(significance))
    if missing and not problems:
        problems.append(f"{SIGNIFICANCE_FILE}: severities {missing} have no row (fix: add them)")
    if problems:
        raise DataFileError(problems)
    return DurCodes(reasons, significance)

