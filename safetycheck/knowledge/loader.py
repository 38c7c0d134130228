"""Read and validate every file under data/; collect all problems, then fail or return a KnowledgeBase."""

import csv
import hashlib
from collections import defaultdict
from pathlib import Path

from marshmallow import ValidationError
from rapidfuzz import fuzz, process

from .. import gcpause
from ..errors import DataFileError
from ..text import normalize
from . import vocabulary
from .base import DrugClass, KnowledgeBase, Membership, NameEntry
from .clinical import load_clinical
from .schemas import DRUG_LIST_FILES

CORTICOSTEROID = "SYSTEMIC_CORTICOSTEROID"
DATA_SUFFIXES = (".csv", ".toml")


class Problems(list):
    """Problems found while loading, each naming file, row and fix."""

    def add(self, where: str, message: str, fix: str = "") -> None:
        self.append(f"{where}: {message}" + (f" (fix: {fix})" if fix else ""))


def _suggest(name: str, known) -> str:
    best = process.extractOne(name, known, scorer=fuzz.ratio, processor=None, score_cutoff=80)
    return f"did you mean '{best[0]}'?" if best else "add it to data/drug_lists/drugs.csv with a source"


def read_rows(path: Path, schema_cls, problems: Problems, label: str):
    """Yield (where, row) for each valid row of a CSV file; record every invalid one."""
    schema = schema_cls()
    by_key = {f.data_key or name: f for name, f in schema.fields.items()}
    expected = list(by_key)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in expected if c not in header and by_key[c].required]
        extra = [c for c in header if c not in expected]
        if missing or extra:
            problems.add(
                f"{label}: header", f"columns missing {missing}, unknown {extra}",
                f"use the header {','.join(expected)}",
            )
            return
        for number, raw in enumerate(reader, start=2):
            where = f"{label}: row {number}"
            if None in raw or any(v is None for v in raw.values()):
                problems.add(where, "wrong number of fields", "quote fields that contain commas")
                continue
            cleaned = {k: v.strip() for k, v in raw.items()}
            cleaned = {k: v for k, v in cleaned.items() if v != "" or by_key[k].required}
            try:
                yield where, schema.load(cleaned)
            except ValidationError as err:
                for column, messages in err.messages.items():
                    problems.add(where, f"{column}: {' '.join(map(str, messages))}")


def content_hash(data_dir: Path, vocabulary_sha: str) -> str:
    """sha256 over every data file (keyed by its path inside data/) and the vocabulary file."""
    digest = hashlib.sha256(vocabulary_sha.encode())
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix in DATA_SUFFIXES):
        digest.update(path.relative_to(data_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return "sha256:" + digest.hexdigest()


def _vocabulary_entry(entry) -> NameEntry:
    if entry.alternatives:
        return NameEntry((), "ambiguous", "vocabulary", entry.alternatives)
    if entry.is_class_term:
        return NameEntry(entry.ingredients, "class_term", "vocabulary")
    via = "exact" if entry.is_generic else ("brand" if entry.is_brand else "synonym")
    return NameEntry(entry.ingredients, via, "vocabulary")


def _vocabulary_names(vocab) -> tuple[dict[str, NameEntry], set[str]]:
    """The vocabulary's names as NameEntry, and its generics."""
    # ~106k names share ~33k entries: convert each distinct entry once (the names keep their order).
    distinct = {id(e): e for e in vocab.names.values()}
    converted = {i: _vocabulary_entry(e) for i, e in distinct.items()}
    names = dict(zip(vocab.names, map(converted.__getitem__, map(id, vocab.names.values())), strict=True))
    return names, {i for e in distinct.values() for i in e.ingredients}


def _one_generic(names: dict, generics: set, name: str) -> str | None:
    """The one generic a name means ("paracetamol" -> acetaminophen), else None."""
    if name in generics:
        return name
    entry = names.get(name)
    ok = entry and len(entry.ingredients) == 1 and entry.via in ("exact", "synonym", "brand")
    return entry.ingredients[0] if ok and entry.ingredients[0] in generics else None


def _split_combination_generics(names: dict, generics: set, memberships) -> None:
    """Vocabulary generics that are combinations ("lopinavir/ritonavir") mean their parts.

    Otherwise ritonavir's classes vanish behind a name of its own. A combination that carries a
    class row of its own (FDA-T1 'lumacaftor and ivacaftor') stays as it is.
    """
    split: dict[str, tuple[str, ...]] = {}
    for generic in list(generics):
        if generic in memberships or not vocabulary.COMBINATION_SPLIT.search(generic):
            continue
        parts = [_one_generic(names, generics, normalize(p))
                 for p in vocabulary.COMBINATION_SPLIT.split(generic) if p.strip()]
        if len(parts) > 1 and all(p and p not in split for p in parts):
            split[generic] = tuple(sorted(set(parts)))
    names.update(_repointed(names, split, lambda key, entry: entry.origin == "vocabulary"))
    generics.difference_update(split)


def _repointed(names: dict, targets: dict, eligible) -> dict:
    """The eligible names whose ingredients include a key of targets, re-pointed at its value."""
    if not targets:
        return {}
    keys = targets.keys()
    # isdisjoint, not set(...) & keys: no set is made for each of the ~106k names.
    return {key: NameEntry(tuple(sorted({r for i in entry.ingredients for r in targets.get(i, (i,))})),
                           entry.via if entry.via != "exact" else "synonym", entry.origin)
            for key, entry in names.items()
            if not keys.isdisjoint(entry.ingredients) and eligible(key, entry)}


@gcpause.paused()
def load_knowledge_base(data_dir, vocab=None) -> KnowledgeBase:
    """Load data_dir (normally the repo's data/) over the open vocabulary; raise DataFileError."""
    data_dir = Path(data_dir)
    vocab = vocab or vocabulary.load()
    problems = Problems()
    lists_dir = data_dir / "drug_lists"
    rows: dict[str, list] = {}
    for filename, schema_cls in DRUG_LIST_FILES.items():
        path = lists_dir / filename
        label = f"data/drug_lists/{filename}"
        if not path.exists():
            problems.add(label, "file is missing", "restore it from git")
            rows[filename] = []
            continue
        rows[filename] = list(read_rows(path, schema_cls, problems, label))

    names, generics = _vocabulary_names(vocab)

    for where, row in rows["drugs.csv"]:
        generic = normalize(row["generic"])
        if generic in generics:
            problems.add(where, f"'{generic}' is already in the vocabulary", "delete the row")
        generics.add(generic)
        names[generic] = NameEntry((generic,), "exact", where)

    def known(drug: str, where: str, column: str) -> str | None:
        key = normalize(drug)
        if key in generics:
            return key
        entry = names.get(key)
        if entry and len(entry.ingredients) == 1 and entry.via in ("synonym", "brand", "exact"):
            return entry.ingredients[0]  # a spelling the vocabulary already resolves
        problems.add(where, f"{column}: unknown drug '{drug}' ({_suggest(key, list(generics))})")
        return None

    curated: dict[str, tuple[tuple[str, ...], str]] = {}
    # Vocabulary generics that a curated row says are another generic (aciclovir -> acyclovir,
    # co-amoxiclav -> amoxicillin + clavulanic acid): every vocabulary name pointing at them
    # is re-pointed, so brands follow.
    redirects: dict[str, tuple[str, ...]] = {}

    def add_name(where: str, name: str, ingredients: tuple[str, ...], via: str,
                 same_substance: bool = False) -> None:
        key = normalize(name)
        if key in curated and curated[key][0] != ingredients:
            problems.add(where, f"'{name}' already maps to {list(curated[key][0])} at {curated[key][1]}",
                         "one name must mean one drug: delete one of the rows")
            return
        if same_substance and key in generics and ingredients != (key,):
            generics.discard(key)
            redirects[key] = ingredients
        existing = names.get(key)
        if existing and existing.origin == "vocabulary" and existing.ingredients != ingredients:
            # The vocabulary lists some INN spellings (aciclovir) as drugs of their own; a curated
            # international/spelling row says they are the same substance. Anything else that
            # re-points a drug's own name is refused: that is how look-alikes get "corrected".
            if existing.via == "exact" and not same_substance:
                problems.add(where, f"'{name}' is itself the drug {list(existing.ingredients)}",
                             "a drug's own name can never be mapped to another drug")
                return
        curated[key] = (ingredients, where)
        names[key] = NameEntry(ingredients, via, where)

    synonym_via = {"brand": "brand"}
    for where, row in rows["synonyms.csv"]:
        generic = known(row["generic"], where, "generic")
        if generic:
            add_name(where, row["name"], (generic,), synonym_via.get(row["kind"], "synonym"),
                     same_substance=row["kind"] in ("international", "spelling", "salt"))

    for where, row in rows["combinations.csv"]:
        parts = [p.strip() for p in row["ingredients"].split(";") if p.strip()]
        resolved = [known(p, where, "ingredients") for p in parts]
        if len(parts) < 2:
            problems.add(where, "ingredients: a combination needs two or more", "separate them with ';'")
        elif all(resolved):
            # A combination row states the product's ingredients, so it may re-point a
            # vocabulary entry that lists the product as if it were one drug (co-codamol).
            add_name(where, row["name"], tuple(sorted(set(resolved))), "brand", same_substance=True)

    names.update(_repointed(names, redirects,
                            lambda key, entry: entry.origin == "vocabulary" and key not in curated))

    for where, row in rows["class_terms.csv"]:
        key = normalize(row["name"])
        entry = names.get(key)
        if entry is None:
            problems.add(where, f"unknown name '{row['name']}'", "only names the vocabulary lists need marking")
            continue
        # A name for a group of drugs ("stool softeners") is never taken as one checked drug.
        names[key] = NameEntry(entry.ingredients, "class_term", where)

    classes: dict[str, DrugClass] = {}
    for where, row in rows["classes.csv"]:
        if row["class_"] in classes:
            problems.add(where, f"class {row['class_']} is defined twice", "delete one row")
        classes[row["class_"]] = DrugClass(row["class_"], row["group"], row["description"], row["source"])

    memberships: dict[str, list[Membership]] = defaultdict(list)
    seen: dict[tuple, str] = {}
    for where, row in rows["memberships.csv"]:
        drug = known(row["drug"], where, "drug")
        if row["class_"] not in classes:
            problems.add(where, f"class: unknown class '{row['class_']}'", "define it in classes.csv")
            continue
        if (row["class_"] == CORTICOSTEROID) != (row.get("factor") is not None):
            problems.add(where, "factor: give a prednisone-equivalent factor on corticosteroid rows only")
            continue
        if not drug:
            continue
        key = (drug, row["class_"], row["authority"], row["scope"])
        if key in seen:
            problems.add(where, f"duplicate of {seen[key]}", "delete one row")
            continue
        seen[key] = where
        memberships[drug].append(Membership(drug, row["class_"], row["authority"], row["scope"],
                                            row.get("factor"), row["source"], row["note"]))

    _split_combination_generics(names, generics, memberships)

    lookalikes: dict[str, set[str]] = defaultdict(set)
    for where, row in rows["lookalikes.csv"]:
        a, b = names.get(normalize(row["name_a"])), names.get(normalize(row["name_b"]))
        if not a or not b:
            missing = row["name_a"] if not a else row["name_b"]
            problems.add(where, f"unknown name '{missing}'", "add it to synonyms.csv or drugs.csv")
            continue
        for x in a.ingredients:
            for y in b.ingredients:
                if x != y:
                    lookalikes[x].add(y)
                    lookalikes[y].add(x)

    clinical = load_clinical(data_dir, problems, known, classes)
    if problems:
        raise DataFileError(problems)
    regimens_file = clinical["regimens.toml"]
    interactions = clinical["rules/interactions.toml"]
    dose = clinical["rules/dose_modifications.toml"]
    return KnowledgeBase(
        labs=clinical["labs.toml"],
        ctcae=clinical["ctcae.toml"],
        regimens={r["id"]: r for r in regimens_file["regimen"]},
        dose_levels={normalize(d["drug"]): d for d in regimens_file["dose_levels"]},
        protocols={p["id"]: p for p in clinical["protocols.toml"]["protocol"]},
        interaction_rules=tuple(interactions["rule"]),
        prophylaxis_rules=tuple(interactions["prophylaxis"]),
        bleeding_rules=tuple(interactions["bleeding"]),
        dose_rules=tuple(dose["rule"]),
        needs={n["drug"]: n for n in dose["needs"]},
        needs_when=tuple(dose["needs_when"]),
        version=content_hash(data_dir, vocab.sha256),
        names=names,
        generics=frozenset(generics),
        classes=classes,
        memberships={d: tuple(ms) for d, ms in memberships.items()},
        lookalikes={d: frozenset(s) for d, s in lookalikes.items()},
        drug_ids=vocab.ids,
        vocabulary_version=vocab.version,
    )
