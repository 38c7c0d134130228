"""The only core entry point: parse -> match -> (rules -> labs) -> result, with no I/O."""

from dataclasses import dataclass

from .knowledge import KnowledgeBase
from .matching import Matcher, MatchResult
from .parsing import ParsedMedication, parse_line


@dataclass(frozen=True)
class MedicationResult:
    """One medication as read and matched, with the classes its ingredients belong to."""

    index: int
    parsed: ParsedMedication
    match: MatchResult
    classes: tuple[str, ...]

    def as_dict(self, kb: KnowledgeBase) -> dict:
        """The contract's `medications[]` entry."""
        best = self.match.best
        memberships = [
            {"drug": m.drug, "class": m.drug_class, "authority": m.authority, "scope": m.scope,
             "source": m.source}
            for drug in self.match.ingredients for m in kb.classes_of(drug)
        ]
        return {
            "index": self.index,
            "input": self.parsed.text,
            "parsed": self.parsed.as_dict(),
            "status": self.match.status,
            "match": None if self.match.status != "matched" else {
                "generic": best.generic, "via": self.match.via, "score": round(best.score, 1),
                "ingredients": list(best.ingredients), "matched_name": best.matched_name,
            },
            "candidates": [c.as_dict() for c in self.match.candidates],
            "classes": list(self.classes),
            "class_memberships": memberships,
        }


class Checker:
    """Holds the validated knowledge base and the name index; pure functions over them."""

    def __init__(self, kb: KnowledgeBase, **match_options):
        self.kb = kb
        self.matcher = Matcher(kb, **match_options)

    def classify(self, parsed: ParsedMedication, index: int) -> MedicationResult:
        """Match one parsed medication and list its ingredients' classes."""
        match = self.matcher.match(parsed)
        classes = sorted({m.drug_class for i in match.ingredients for m in self.kb.classes_of(i)})
        return MedicationResult(index, parsed, match, tuple(classes))

    def match_texts(self, texts: list[str]) -> list[MedicationResult]:
        """Parse and match free-text medication lines."""
        return [self.classify(parse_line(text), i) for i, text in enumerate(texts)]
