"""The open drug vocabulary (drug-named-entity-recognition, MIT): names -> generics.

We read the package's data file only. Its Python code loads the same file at import time and
has network helpers, so it is never imported; the pickle is read with an unpickler that refuses
every global, so the file can hold nothing but plain containers and strings. Normalising its
~107k names takes about a second, so the result is cached as JSON (see safetycheck.cache).
"""

import bz2
import hashlib
import io
import json
import pickle
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import metadata

import orjson

from .. import cache as cache_files
from .. import forms, gcpause, text
from ..forms import base_molecule
from ..text import normalize, normalize_all

DISTRIBUTION = "drug-named-entity-recognition"
DATA_FILE = "drug_named_entity_recognition/drug_ner_dictionary.pkl.bz2"
# Bump when the cache file's layout changes (edits to this module or text.py invalidate it anyway).
CACHE_FORMAT = 1
CACHE_FILE = "vocabulary.json"

# Biosimilar / biologic suffixes the FDA appends (isatuximab-irfc, filgrastim-sndz).
_BIOLOGIC_SUFFIX = re.compile(r"^(?P<base>[a-z][a-z ]+[a-z])-[a-z]{4}$")
_COMBINATION_SPLIT = re.compile(r"\s*(?:/|,\s*and\s+|,\s*|\s+and\s+)\s*")
COMBINATION_SPLIT = _COMBINATION_SPLIT


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


def load(path: str | None = None, cache_dir=None) -> Vocabulary:
    """Load and normalise the vocabulary file (once per process: it never changes under us).

    With cache_dir, the normalised vocabulary is read from (or written to) a cache file there.
    """
    version = "unknown"
    if path is None:
        path, version = locate()
    return _load(path, version, str(cache_dir) if cache_dir else None)


@lru_cache(maxsize=2)
@gcpause.paused()
def _load(path: str, version: str, cache_dir: str | None) -> Vocabulary:
    with open(path, "rb") as handle:
        raw = handle.read()
    sha256 = hashlib.sha256(raw).hexdigest()
    key = ""
    if cache_dir:
        # The file's hash, not its path or mtime: a reinstall of the same version reuses the cache.
        code = cache_files.source_digest(__file__, text.__file__, forms.__file__)
        key = f"vocabulary:{CACHE_FORMAT}:{sha256}:{version}:{code}"
        payload = cache_files.read(cache_dir, CACHE_FILE, key)
        if payload is not None:
            try:
                return _decode(payload)
            except (ValueError, TypeError, KeyError, IndexError):
                pass  # written by a layout this code no longer reads: derive it again
    data = _PlainUnpickler(io.BytesIO(bz2.decompress(raw))).load()
    vocab = _build(data, version, sha256)
    if cache_dir:
        cache_files.write(cache_dir, CACHE_FILE, key, _encode(vocab))
    return vocab


def _encode(vocab: Vocabulary) -> bytes:
    # ~107k names share ~33k distinct entries: store each entry once and index it. _build shares
    # equal entries, so they are told apart by identity (hashing a dataclass is a Python call).
    distinct: dict[int, int] = {}
    index = [distinct.setdefault(id(e), len(distinct)) for e in vocab.names.values()]
    entries = list({id(e): e for e in vocab.names.values()}.values())
    # orjson: the same text as json.dumps(separators=(",", ":")) for these ASCII names, ~8x faster
    # (and any text it wrote for other names decodes to the same values).
    return orjson.dumps({
        "version": vocab.version,
        "sha256": vocab.sha256,
        "names": list(vocab.names),  # a list keeps the order, which the matcher's index relies on
        "entry": index,
        "entries": [[e.ingredients, e.is_generic, e.is_brand, e.alternatives, e.is_class_term]
                    for e in entries],
        "ids": vocab.ids,
    })


def _decode(payload: bytes) -> Vocabulary:
    data = json.loads(payload)
    entries = [VocabularyEntry(tuple(ingredients), is_generic, is_brand, tuple(map(tuple, alternatives)),
                               is_class_term)
               for ingredients, is_generic, is_brand, alternatives, is_class_term in data["entries"]]
    names = dict(zip(data["names"], map(entries.__getitem__, data["entry"]), strict=True))
    ids = {generic: dict(found) for generic, found in data["ids"].items()}
    return Vocabulary(names=names, ids=ids, version=data["version"], sha256=data["sha256"])


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
            # A salt, ester or formulation (dexamethasone acetate, doxorubicin lipid complex) is
            # its molecule: the molecule's classes and interactions must apply to it.
            return (base_molecule(name, canonicals) or name,)
        parts = [_canonical(p) for p in _COMBINATION_SPLIT.split(name) if p]
        parts = [base_molecule(p, canonicals) or p for p in parts]
        # Split a combination only when every part is itself a known drug.
        if len(parts) > 1 and all(p in canonicals for p in parts):
            return tuple(sorted(set(parts)))
        return (base_molecule(name, canonicals) or name,)

    # ~107k names share ~33k distinct entries: each is made once and shared, as _decode does.
    entries: dict[tuple, VocabularyEntry] = {}

    def entry(*fields) -> VocabularyEntry:
        found = entries.get(fields)
        if found is None:
            found = entries[fields] = VocabularyEntry(*fields)
        return found

    @cache
    def own_entry(key: str) -> VocabularyEntry:
        # A generic's own name means that generic, whatever else the file lists under it;
        # a salt or formulation generic means its molecule.
        base = base_molecule(key, canonicals)
        return entry((base or key,), base is None, False, (), key in class_terms)

    @cache
    def one_target(target: str) -> tuple[tuple[str, ...], bool]:
        # Every variant in the file has one target; its meaning and class-term mark, once per target.
        return ingredients_of(target), _canonical(target) in class_terms

    brands = {variant for variant, info in variant_data.items() if info.get("is_brand")}
    names: dict[str, VocabularyEntry] = {}
    variants = data["drug_variant_to_canonical"]
    for key, (variant, targets) in zip(normalize_all(list(variants)), variants.items(), strict=True):
        if not key:
            continue
        if key in canonicals:
            names[key] = own_entry(key)
            continue
        if len(targets) == 1:
            ingredients, is_class = one_target(targets[0])
            meanings = (ingredients,)
        else:
            meanings, is_class = tuple(sorted({ingredients_of(t) for t in targets})), None
        previous = names.get(key)
        if previous:
            meanings = tuple(sorted(set(meanings) | {previous.ingredients} | set(previous.alternatives)
                                    - {()}))
        if len(meanings) > 1:
            # Spellings that normalise to one key but mean different drugs: never pick one.
            names[key] = entry((), False, False, meanings, False)
            continue
        if is_class is None:
            is_class = all(t in class_terms for t in map(_canonical, targets))
        fields = (meanings[0], False, variant in brands, (), is_class)
        found = entries.get(fields)  # entry(), inlined: this line runs for ~87k names
        names[key] = found if found is not None else entry(*fields)

    ids: dict[str, dict[str, str]] = {}
    for canonical, info in canon_data.items():
        keep = {k: info[k] for k in ("drugbank_id", "medline_plus_id") if info.get(k)}
        if keep:
            ids.setdefault(_canonical(canonical), keep)
    return Vocabulary(names=names, ids=ids, version=version, sha256=sha256)
