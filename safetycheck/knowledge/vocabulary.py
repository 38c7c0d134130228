"""The open drug vocabulary (drug-named-entity-recognition, MIT): names -> generics.

We read the package's data file only. Its Python code loads the same file at import time and
has network helpers, so it is never imported; the pickle is read with an unpickler that refuses
every global, so the file can hold nothing but plain containers and strings.
"""

import bz2
import hashlib
import io
import pickle
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import metadata

from ..text import normalize

DISTRIBUTION = "drug-named-entity-recognition"
DATA_FILE = "drug_named_entity_recognition/drug_ner_dictionary.pkl.bz2"

# Biosimilar / biologic suffixes the FDA appends (isatuximab-irfc, filgrastim-sndz).
_BIOLOGIC_SUFFIX = re.compile(r"^(?P<base>[a-z][a-z ]+[a-z])-[a-z]{4}$")
_COMBINATION_SPLIT = re.compile(r"\s*(?:/|,\s*and\s+|,\s*|\s+and\s+)\s*")


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"vocabulary file refers to {module}.{name}; refusing to load")


@dataclass(frozen=True)
class VocabularyEntry:
    """One vocabulary name: the generic(s) it stands for and whether the source marks it a brand.

    `alternatives` is set instead of `ingredients` when spellings that normalise to the same key
    mean different drugs; `is_class_term` marks names of drug classes ("antiemetics").
    """

    ingredients: tuple[str, ...]
    is_generic: bool
    is_brand: bool
    alternatives: tuple[tuple[str, ...], ...] = ()
    is_class_term: bool = False


@dataclass(frozen=True)
class Vocabulary:
    """Normalised name -> entry, plus ids per generic and provenance of the file."""

    names: dict[str, VocabularyEntry]
    ids: dict[str, dict[str, str]]
    version: str
    sha256: str


def locate() -> tuple[str, str]:
    """Return (path to the data file, package version)."""
    dist = metadata.distribution(DISTRIBUTION)
    return str(dist.locate_file(DATA_FILE)), dist.version


def load(path: str | None = None) -> Vocabulary:
    """Load and normalise the vocabulary file (once per process: it never changes under us)."""
    version = "unknown"
    if path is None:
        path, version = locate()
    return _load(path, version)


@lru_cache(maxsize=2)
def _load(path: str, version: str) -> Vocabulary:
    with open(path, "rb") as handle:
        raw = handle.read()
    data = _PlainUnpickler(io.BytesIO(bz2.decompress(raw))).load()
    return _build(data, version, hashlib.sha256(raw).hexdigest())


@cache
def _canonical(name: str) -> str:
    name = normalize(name)
    match = _BIOLOGIC_SUFFIX.match(name)
    return match.group("base") if match else name


def _build(data: dict, version: str, sha256: str) -> Vocabulary:
    canon_data = data["drug_canonical_to_data"]
    variant_data = data["drug_variant_to_variant_data"]
    canonicals = {_canonical(c) for c in canon_data}
    # MeSH "Chemical Actions and Uses" (D27) headings with no DrugBank id name a class of drugs
    # (Anti-Bacterial Agents, Antiemetics), never one drug.
    class_terms = {
        _canonical(c) for c, info in canon_data.items()
        if not info.get("drugbank_id") and info.get("mesh_tree")
        and all(t.startswith("D27") for t in info["mesh_tree"])
    }

    @cache
    def ingredients_of(canonical: str) -> tuple[str, ...]:
        name = _canonical(canonical)
        if name in canonicals and not _COMBINATION_SPLIT.search(name):
            return (name,)
        parts = [_canonical(p) for p in _COMBINATION_SPLIT.split(name) if p]
        # Split a combination only when every part is itself a known drug.
        if len(parts) > 1 and all(p in canonicals for p in parts):
            return tuple(sorted(set(parts)))
        return (name,)

    names: dict[str, VocabularyEntry] = {}
    for variant, targets in data["drug_variant_to_canonical"].items():
        key = normalize(variant)
        if not key:
            continue
        if key in canonicals:
            # A generic's own name means that generic, whatever else the file lists under it.
            names[key] = VocabularyEntry((key,), True, False, is_class_term=key in class_terms)
            continue
        meanings = tuple(sorted({ingredients_of(t) for t in targets}))
        previous = names.get(key)
        if previous:
            meanings = tuple(sorted(set(meanings) | {previous.ingredients} | set(previous.alternatives)
                                    - {()}))
        if len(meanings) > 1:
            # Spellings that normalise to one key but mean different drugs: never pick one.
            names[key] = VocabularyEntry((), False, False, alternatives=meanings)
            continue
        is_brand = bool(variant_data.get(variant, {}).get("is_brand"))
        is_class = all(t in class_terms for t in map(_canonical, targets))
        names[key] = VocabularyEntry(meanings[0], False, is_brand, is_class_term=is_class)

    ids: dict[str, dict[str, str]] = {}
    for canonical, info in canon_data.items():
        keep = {k: info[k] for k in ("drugbank_id", "medline_plus_id") if info.get(k)}
        if keep:
            ids.setdefault(_canonical(canonical), keep)
    return Vocabulary(names=names, ids=ids, version=version, sha256=sha256)
