"""The loaded knowledge base: immutable records the pipeline reads, never writes."""

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DrugClass:
    """An interaction or therapeutic class (CYP3A_STRONG_INHIBITOR, PPI, LMWH ...)."""

    id: str
    group: str
    description: str
    source: str


@dataclass(frozen=True)
class Membership:
    """One authority's statement that a drug belongs to a class."""

    drug: str
    drug_class: str
    authority: str
    scope: str
    factor: float | None
    source: str
    note: str


@dataclass(frozen=True)
class NameEntry:
    """What a normalised name stands for, and how it is related to its generic(s)."""

    ingredients: tuple[str, ...]
    via: str  # exact | brand | synonym | class_term | ambiguous
    origin: str  # "vocabulary" or "file:row" of the curated row
    alternatives: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class KnowledgeBase:
    """Everything clinical the pipeline needs, validated and hashed at load time."""

    version: str
    names: Mapping[str, NameEntry]
    generics: frozenset[str]
    classes: Mapping[str, DrugClass]
    memberships: Mapping[str, tuple[Membership, ...]]
    lookalikes: Mapping[str, frozenset[str]]
    drug_ids: Mapping[str, Mapping[str, str]]
    vocabulary_version: str
    labs: Mapping[str, dict] = field(default_factory=dict)
    ctcae: Mapping[str, dict] = field(default_factory=dict)
    regimens: Mapping[str, dict] = field(default_factory=dict)
    dose_levels: Mapping[str, dict] = field(default_factory=dict)
    protocols: Mapping[str, dict] = field(default_factory=dict)
    interaction_rules: tuple = ()
    prophylaxis_rules: tuple = ()
    bleeding_rules: tuple = ()
    dose_rules: tuple = ()
    needs: Mapping[str, dict] = field(default_factory=dict)
    needs_when: tuple = ()

    def classes_of(self, drug: str) -> tuple[Membership, ...]:
        """Every class membership recorded for a generic."""
        return self.memberships.get(drug, ())
