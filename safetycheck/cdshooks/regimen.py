"""Which regimen the orders and the active list describe (pomalidomide + ixazomib + dexamethasone -> ipd)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Recognition:
    """The regimen found (or None), the regimen drugs seen, and why when none was chosen."""

    regimen: str | None
    seen: tuple[str, ...]
    reason: str = ""


def signature_drugs(kb) -> set[str]:
    """Regimen drugs that tell regimens apart: dexamethasone is in every one and alone means nothing."""
    drug_sets = [set(r["drugs"]) for r in kb.regimens.values()]
    if not drug_sets:
        return set()
    return set().union(*drug_sets) - set.intersection(*drug_sets)


def recognise(kb, generics: set[str], pinned: str | None = None) -> Recognition:
    """The one regimen that contains every signature drug seen; all its drugs present wins a tie."""
    signature = signature_drugs(kb)
    seen = tuple(sorted(generics & signature))
    if pinned:
        return Recognition(pinned, seen, "pinned by configuration")
    if not seen:
        return Recognition(None, (), "no myeloma regimen drug on the orders or the active list")
    candidates = [r["id"] for r in kb.regimens.values() if set(seen) <= set(r["drugs"])]
    complete = [rid for rid in candidates if set(kb.regimens[rid]["drugs"]) <= generics]
    if len(candidates) == 1:
        return Recognition(candidates[0], seen)
    if len(complete) == 1:
        return Recognition(complete[0], seen)
    if not candidates:
        return Recognition(None, seen, f"{', '.join(seen)} together are not one of the known regimens")
    return Recognition(None, seen, f"{', '.join(seen)} could be {' or '.join(sorted(candidates))}")
