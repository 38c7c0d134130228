"""Start-up fast paths equal the straightforward code they replaced, over the real data, in every entry.

The reference implementations below are the code as it was before the fast paths (issue 12), kept
verbatim so the comparison means something: vocabulary._build and _encode, forms.strip_forms,
matching._build_index and loader.load_knowledge_base (with its _split_combination_generics);
text.normalize_all is compared with text.normalize name by name.
"""

import bz2
import io
import json
import random
from collections import defaultdict
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from safetycheck import matching
from safetycheck.errors import DataFileError
from safetycheck.forms import _FORMULATION_PHRASES, FORMULATION_WORDS, SALT_WORDS
from safetycheck.knowledge import loader, vocabulary
from safetycheck.knowledge.base import DrugClass, KnowledgeBase, Membership, NameEntry
from safetycheck.knowledge.clinical import load_clinical
from safetycheck.knowledge.loader import (
    CORTICOSTEROID,
    Problems,
    _one_generic,
    _suggest,
    _vocabulary_entry,
    content_hash,
    read_rows,
)
from safetycheck.knowledge.schemas import DRUG_LIST_FILES
from safetycheck.knowledge.vocabulary import _BIOLOGIC_SUFFIX, _COMBINATION_SPLIT, Vocabulary, VocabularyEntry
from safetycheck.text import normalize, normalize_all

ROOT = Path(__file__).resolve().parents[1]


# -- reference: forms.strip_forms / base_molecule -----------------------------------------------
def strip_forms(key: str) -> str:
    key = _FORMULATION_PHRASES.sub(" ", key)
    return " ".join(w for w in key.split() if w not in SALT_WORDS and w not in FORMULATION_WORDS)


def base_molecule(key: str, molecules) -> str | None:
    base = strip_forms(key)
    return base if base and base != key and base in molecules else None


# -- reference: vocabulary._build and _encode ----------------------------------------------------
@cache
def _canonical(name: str) -> str:
    name = normalize(name)
    match = _BIOLOGIC_SUFFIX.match(name)
    return match.group("base") if match else name


def reference_vocabulary_build(data: dict, version: str, sha256: str) -> Vocabulary:
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

    names: dict[str, VocabularyEntry] = {}
    for variant, targets in data["drug_variant_to_canonical"].items():
        key = normalize(variant)
        if not key:
            continue
        if key in canonicals:
            # A generic's own name means that generic, whatever else the file lists under it;
            # a salt or formulation generic means its molecule.
            base = base_molecule(key, canonicals)
            names[key] = VocabularyEntry((base or key,), base is None, False, is_class_term=key in class_terms)
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


def reference_encode(vocab: Vocabulary) -> bytes:
    # ~107k names share ~33k distinct entries: store each entry once and index it.
    entries: dict[VocabularyEntry, int] = {}
    index = [entries.setdefault(e, len(entries)) for e in vocab.names.values()]
    return json.dumps({
        "version": vocab.version,
        "sha256": vocab.sha256,
        "names": list(vocab.names),  # a list keeps the order, which the matcher's index relies on
        "entry": index,
        "entries": [[e.ingredients, e.is_generic, e.is_brand, e.alternatives, e.is_class_term]
                    for e in entries],
        "ids": vocab.ids,
    }, separators=(",", ":")).encode()


# -- reference: matching._build_index ------------------------------------------------------------
def _trigrams(key: str) -> set[str]:
    padded = f"  {key} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def reference_build_index(keys: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    postings: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        for gram in _trigrams(key):
            postings.setdefault(gram, []).append(i)
    offsets = np.zeros(len(postings) + 1, dtype=np.int64)
    np.cumsum([len(ids) for ids in postings.values()], out=offsets[1:])
    ids = np.concatenate([np.asarray(ids, dtype=np.int32) for ids in postings.values()] or [[]])
    return list(postings), offsets, ids.astype(np.int32, copy=False)


# -- reference: loader.load_knowledge_base -------------------------------------------------------
def reference_split_combination_generics(names: dict, generics: set, memberships) -> None:
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
    for key, entry in list(names.items()):
        if entry.origin == "vocabulary" and set(entry.ingredients) & split.keys():
            ingredients = tuple(sorted({r for i in entry.ingredients for r in split.get(i, (i,))}))
            names[key] = NameEntry(ingredients, entry.via if entry.via != "exact" else "synonym", entry.origin)
    generics.difference_update(split)


def reference_load_knowledge_base(data_dir, vocab=None) -> KnowledgeBase:
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

    names = {key: _vocabulary_entry(e) for key, e in vocab.names.items()}
    generics = {i for e in vocab.names.values() for i in e.ingredients}

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

    if redirects:
        for key, entry in list(names.items()):
            if entry.origin != "vocabulary" or key in curated:
                continue
            if set(entry.ingredients) & redirects.keys():
                ingredients = tuple(sorted({r for i in entry.ingredients
                                            for r in redirects.get(i, (i,))}))
                names[key] = NameEntry(ingredients, entry.via if entry.via != "exact" else "synonym",
                                       entry.origin)

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

    reference_split_combination_generics(names, generics, memberships)

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


# -- the comparisons -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def raw_vocabulary():
    path, version = vocabulary.locate()
    with open(path, "rb") as handle:
        data = vocabulary._PlainUnpickler(io.BytesIO(bz2.decompress(handle.read()))).load()
    return data, version


@pytest.fixture(scope="module")
def vocabularies(raw_vocabulary):
    data, version = raw_vocabulary
    return vocabulary._build(data, version, "sha"), reference_vocabulary_build(data, version, "sha")


def test_vocabulary_build_equals_the_reference_in_every_name_and_in_order(vocabularies):
    fast, reference = vocabularies
    assert list(fast.names.items()) == list(reference.names.items())  # order: the index relies on it
    assert list(fast.ids.items()) == list(reference.ids.items())
    assert (fast.version, fast.sha256) == (reference.version, reference.sha256)
    assert len(reference.names) > 100_000


def test_vocabulary_build_with_several_targets_and_clashing_spellings_equals_the_reference(raw_vocabulary):
    """The real file gives every variant one target; the general path is checked on a variant of it."""
    data, version = raw_vocabulary
    variants = dict(list(data["drug_variant_to_canonical"].items())[:3000])
    canonicals = list(data["drug_canonical_to_data"])[:3000]
    pick = random.Random(12)
    for n, variant in enumerate(list(variants)[:600]):
        variants[variant] = pick.sample(canonicals, 1 + n % 3) if n % 4 else []
    # Spellings that normalise to one key (case, punctuation): clashes and the previous-entry merge.
    variants.update({variant.upper() + ".": [pick.choice(canonicals)] for variant in list(variants)[600:900]})
    variants.update({"  " + variant.title(): targets for variant, targets in list(variants.items())[900:1200]})
    edited = {**data, "drug_variant_to_canonical": variants}
    try:
        fast = vocabulary._build(edited, version, "sha")
    except IndexError:  # a variant with no target: the reference fails the same way
        with pytest.raises(IndexError):
            reference_vocabulary_build(edited, version, "sha")
        edited["drug_variant_to_canonical"] = {v: t for v, t in variants.items() if t}
        fast = vocabulary._build(edited, version, "sha")
    reference = reference_vocabulary_build(edited, version, "sha")
    assert list(fast.names.items()) == list(reference.names.items())
    assert any(e.alternatives for e in reference.names.values())


def test_the_vocabulary_cache_file_is_the_one_the_old_code_wrote(vocabularies):
    """Same bytes: the cache layout did not change (vocabulary.CACHE_FORMAT stays)."""
    fast, reference = vocabularies
    assert vocabulary._encode(fast) == reference_encode(reference)


ODD_NAMES = ["", " ", "\0", "a\0b", "A.B.C", "  --x--  ", "'quoted'", "co-trimoxazole", "Tylenol\u00ae #3",
             "caf\u00e9", "na\u00efve\u2019s", "\u00bd tab", "ABC/def + ghi", "x\ty\nz", "..", "#1", "+-/'",
             "Lipid Complex", "\u2603", "e\u0301", "\u0301e", "\u00df", "it`s", "caf\u00e9`s",
             "DEXAMETHASONE sodium phosphate 4 MG/ML"]


def test_normalize_all_equals_normalize_name_by_name(raw_vocabulary, kb):
    data, _ = raw_vocabulary
    pick = random.Random(12)
    letters = "aZ09 .-/+'#,;()`\t\0\u00e9\u2019\u2018\u00ae\u0301_"
    made = ["".join(pick.choice(letters) for _ in range(pick.randrange(12))) for _ in range(3000)]
    for names in (list(data["drug_variant_to_canonical"]), list(data["drug_canonical_to_data"]), list(kb.names),
                  ODD_NAMES, made, [n for n in made if "\0" not in n and n.isascii()], [], ["\u00e9"], ["x"]):
        assert normalize_all(names) == [normalize(n) for n in names]


def test_strip_forms_equals_the_reference(raw_vocabulary, kb):
    from safetycheck import forms

    data, _ = raw_vocabulary
    keys = [*normalize_all(list(data["drug_variant_to_canonical"])), *kb.names, *map(normalize, ODD_NAMES),
            "heparin sodium porcine", "doxorubicin liposomal", "x sodium sodium", "sodium", "lipid complex"]
    assert [forms.strip_forms(k) for k in keys] == [strip_forms(k) for k in keys]
    molecules = set(kb.generics)
    assert [forms.base_molecule(k, molecules) for k in keys] == [base_molecule(k, molecules) for k in keys]


def as_postings(built) -> dict[str, list[int]]:
    grams, offsets, ids = built
    assert ids.dtype == np.int32 and offsets.dtype == np.int64 and len(offsets) == len(grams) + 1
    return {gram: ids[offsets[j] : offsets[j + 1]].tolist() for j, gram in enumerate(grams)}


def test_index_build_equals_the_reference_over_the_real_names(kb):
    keys = [k for k in kb.names if len(k) >= 3]
    fast, reference = as_postings(matching._build_index(keys)), as_postings(reference_build_index(keys))
    assert fast == reference
    assert all(ids == sorted(set(ids)) for ids in fast.values())  # ascending, each key once
    assert len(fast) > 10_000


@pytest.mark.parametrize("keys", [
    [], ["abc"], ["", "a", "ab"], ["banana", "anana", "nanana nanana"],
    ["caf\u00e9 \u00fc\u00df", "\u2603\u2603\u2603 x"],
    [f"k{i} {i * 7919 % 1000}" for i in range(3000)],
    ["".join(map(chr, range(0x4e00 + i * 50, 0x4e00 + i * 50 + 8))) for i in range(600)],  # a huge alphabet
    ["".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=12))
     for i in range(20000)],  # more than 65536 distinct grams: no 16-bit sort
], ids=["none", "one", "short", "repeats", "unicode", "many", "huge-alphabet", "many-grams"])
def test_index_build_equals_the_reference_on_edge_cases(keys):
    assert as_postings(matching._build_index(keys)) == as_postings(reference_build_index(keys))


def test_knowledge_base_equals_the_reference_built_from_the_reference_vocabulary(vocabularies):
    fast_vocabulary, reference_vocabulary = vocabularies
    fast = loader.load_knowledge_base(ROOT / "data", fast_vocabulary)
    reference = reference_load_knowledge_base(ROOT / "data", reference_vocabulary)
    assert list(fast.names.items()) == list(reference.names.items())
    assert fast == reference  # every other field too


def test_a_bad_data_file_is_refused_with_the_same_problems(vocabularies, tmp_path):
    import shutil

    shutil.copytree(ROOT / "data", tmp_path / "data")
    synonyms = tmp_path / "data" / "drug_lists" / "synonyms.csv"
    synonyms.write_text(synonyms.read_text(encoding="utf-8") + "zorbatrexine,not-a-drug,brand,test\n",
                        encoding="utf-8")
    problems = []
    for load in (loader.load_knowledge_base, reference_load_knowledge_base):
        with pytest.raises(DataFileError) as err:
            load(tmp_path / "data", vocabularies[0])
        problems.append(str(err.value))
    assert problems[0] == problems[1] and "synonyms.csv: row" in problems[0]
