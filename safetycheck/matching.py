"""Parsed medication -> matched / ambiguous / unmatched drug, never a silent guess.

Order: RxNorm " / " and pack strings part by part, exact name, name without salt, formulation and
dose-form words (safetycheck.forms), known names inside the line, and only then fuzzy; a short name
that fuzzy leaves unmatched may be rescued phonetically (metaphone) when it is the only drug in
reach. A known drug name in the line pins the molecule: fuzzy may not move off it.

Fuzzy runs on a trigram-prefiltered shortlist (a full scan of ~110k names costs milliseconds per
name) and scores with the normalised OSA edit similarity (a transposition is one edit; a length
difference costs in full), never `partial_ratio`, which scores omeprazole against esomeprazole at
100, nor `ratio`, which puts carbamazapine as near diethylcarbamazine as carbamazepine. A name that
is itself a known drug never reaches fuzzy, so a look-alike is never "corrected" into its twin.
"""

import array
import hashlib
import io
import re
import zipfile
from contextlib import suppress
from dataclasses import dataclass, field

import jellyfish
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from . import cache as cache_files
from ._shortlist import top_shared
from .forms import SALT_WORDS, strip_forms
from .knowledge import KnowledgeBase, NameEntry
from .parsing import ParsedMedication, parse_line
from .text import normalize

# Words that may stand beside a product name without naming another ingredient.
DESCRIPTOR_WORDS = frozenset(
    "extra strength regular maximum max children's childrens infant infants junior adult adults "
    "forte ds ss low dose mini original".split()
)
_PART_SEPARATORS = re.compile(r"\s*(?:/|\+|,|\band\b|\bwith\b|\bw/)\s*")
FORM_WORDS = frozenset(
    "tab tabs tablet tablets cap caps capsule capsules er xr sr dr xl cr la ec odt inj injection "
    "injectable solution soln susp suspension chewable extended delayed release film coated oral "
    "auto-injector autoinjector injector pen vial syringe prefilled patch cream ointment gel drops "
    "spray inhaler hfa powder elixir syrup liquid disintegrating otc rx generic brand "
    # RxNorm SCD/SBD words ("0.09 MG/ACTUAT Metered Dose Inhaler", "{...} Pack [Camila 28 Day]").
    "actuat metered dose pack inhalant topical intrauterine transdermal system".split()
)
# Words of a sentence around a drug name ("stopped taking omeprazole", "my prilosec").
_FILLER_WORDS = frozenset(
    "my his her their the a an i im i'm was were is am on off taking take takes took stopped stop "
    "started start restarted still also currently used using uses prescribed given daily was been has had "
    "recently previously prior home med meds medication medicine medicines of pt patient reports "
    "antibiotic".split()
)
_NEGATION_WORDS = frozenset(
    "no not non never without avoid avoidance allergy allergies allergic intolerance intolerant denies deny "
    "nkda nka contraindicated".split()
)
_WITH = re.compile(r"\bwith\b|\bw/", re.I)
_DAY_PACK = re.compile(r"\b\d+ day(?: pack)?\b")
# An RxNorm clinical/branded drug string with " / " between ingredients, or a pack.
_RXNORM_MULTI = re.compile(r"\d\s*(?:MG|MCG|ML|UNT|ACTUAT|MEQ|%)\S*\s/\s|^\s*\{", re.I)
_PACK_COUNT = re.compile(r"\b\d+\s*\(|[(){}]|\bpack\b", re.I)
# A product line numbered after its name ("anacin 3", acetaminophen, is not "anacin", aspirin).
_NUMBERED_LINE = re.compile(r"[\s-]*\d+$")
_INERT = frozenset({"inert ingredients", "inert ingredient", "inert"})



@dataclass(frozen=True)
class Candidate:
    """A drug the input may mean, with the name that matched and its score."""

    ingredients: tuple[str, ...]
    matched_name: str
    score: float

    @property
    def generic(self) -> str:
        return " / ".join(self.ingredients)

    def as_dict(self) -> dict:
        return {"generic": self.generic, "ingredients": list(self.ingredients),
                "matched_name": self.matched_name, "score": round(self.score, 1)}


@dataclass(frozen=True)
class MatchResult:
    """The outcome for one medication: status, the chosen drug if any, and the alternatives."""

    status: str  # matched | ambiguous | unmatched
    via: str | None = None
    best: Candidate | None = None
    candidates: tuple[Candidate, ...] = field(default=())

    @property
    def ingredients(self) -> tuple[str, ...]:
        return self.best.ingredients if self.best and self.status == "matched" else ()


# Phonetic rescue: the sound-alike must keep this much of the spelling (OSA similarity, 0-100);
# any other drug of the same sound spelt at least PHONETIC_REACH alike blocks it.
PHONETIC_FLOOR = 70.0
PHONETIC_REACH = 50.0
# Grams shared by more names than this are left out of the shortlist count.
COMMON_GRAM = 5000
# Bump when the index cache file's layout changes (edits to this module invalidate it anyway).
INDEX_FORMAT = 1
INDEX_FILE = "matcher-index.npz"


def _trigrams(key: str) -> set[str]:
    padded = f"  {key} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def _build_index(keys: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Trigram postings as CSR: gram j lists the key ids ids[offsets[j]:offsets[j + 1]], ascending.

    The same postings as collecting _trigrams(key) per key in Python, in array operations (~10x
    faster): every gram of every padded key as one integer, a stable sort by gram (key order kept
    within a gram), and duplicates of (gram, key) dropped.
    """
    if not keys:
        return [], np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32)
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys)) + 3  # f"  {key} "
    padded = "  " + "   ".join(keys) + " "  # "".join(f"  {key} " for key in keys), in one call
    chars = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32)
    # Rank the characters present, so that a gram is one integer below len(alphabet) ** 3.
    present = np.bincount(chars) > 0
    alphabet = np.flatnonzero(present)
    size = len(alphabet)
    wide = np.int32 if size ** 3 < 1 << 31 else np.int64
    rank = (np.cumsum(present, dtype=wide) - 1)[chars]
    codes = (rank[:-2] * size + rank[1:-1]) * size + rank[2:]
    # A key's last two start positions would read into the next key: those get a gram number past
    # every real one, so they sort last and are cut off below.
    ends = np.cumsum(lengths)[:-1]
    codes[ends - 2] = codes[ends - 1] = size ** 3
    straddling = 2 * (len(keys) - 1)
    if size ** 3 < 1 << 24:
        seen = np.bincount(codes, minlength=size ** 3 + 1) > 0
        gram_codes, gram_of = np.flatnonzero(seen), (np.cumsum(seen, dtype=np.int32) - 1)[codes]
    else:  # a huge alphabet: rank the grams by sorting instead of a table
        gram_codes, gram_of = np.unique(codes, return_inverse=True)
    if len(gram_codes) <= 1 << 16:
        gram_of = gram_of.astype(np.uint16)  # a stable sort of 16-bit integers is a radix sort
    order = np.argsort(gram_of, kind="stable")[: len(codes) - straddling]
    if straddling:
        gram_codes = gram_codes[:-1]  # the straddling number, always the largest
    owner = np.repeat(np.arange(len(keys), dtype=np.int32), lengths)[order]
    gram_of = gram_of[order]
    keep = np.ones(len(owner), dtype=bool)
    keep[1:] = (gram_of[1:] != gram_of[:-1]) | (owner[1:] != owner[:-1])  # a gram twice in one key
    gram_of, ids = gram_of[keep], owner[keep]
    offsets = np.zeros(len(gram_codes) + 1, dtype=np.int64)
    np.cumsum(np.bincount(gram_of, minlength=len(gram_codes)), out=offsets[1:])
    letters = alphabet[np.stack([gram_codes // size ** 2, gram_codes // size % size, gram_codes % size], axis=1)]
    grams = ["".join(map(chr, gram)) for gram in letters.tolist()]
    return grams, offsets, ids


def _encode_index(grams: list[str], offsets: np.ndarray, ids: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, grams=np.asarray(grams, dtype="U3"), offsets=offsets, ids=ids)
    return buffer.getvalue()


def _decode_index(payload: bytes, n_keys: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        grams, offsets, ids = data["grams"].tolist(), data["offsets"], data["ids"]
    # The checksum rules out damage; these rule out a file from code that laid it out differently.
    if not (ids.dtype == np.int32 and offsets.ndim == ids.ndim == 1 and len(offsets) == len(grams) + 1
            and offsets[0] == 0 and offsets[-1] == len(ids) and np.all(np.diff(offsets) > 0)
            and (not len(ids) or (ids.min() >= 0 and ids.max() < n_keys))
            and all(len(g) == 3 for g in grams)):
        raise ValueError("matcher index cache does not fit the names")
    return grams, offsets, ids


def _index(keys: list[str], kb_version: str, cache_dir) -> dict[str, np.ndarray]:
    """gram -> ascending int32 ids of the keys containing it, read from cache_dir when it holds them."""
    key, built = "", None
    if cache_dir:
        # kb.version covers the data files, not the loader code that turns them into names: hash the
        # keys themselves (a few ms), so an index can never be paired with names it was not built from.
        names = hashlib.sha256("\0".join(keys).encode()).hexdigest()
        key = f"matcher-index:{INDEX_FORMAT}:{kb_version}:{names}:{cache_files.source_digest(__file__)}"
        payload = cache_files.read(cache_dir, INDEX_FILE, key)
        if payload is not None:
            with suppress(ValueError, KeyError, OSError, zipfile.BadZipFile):
                built = _decode_index(payload, len(keys))
    if built is None:
        built = _build_index(keys)
        if cache_dir:
            cache_files.write(cache_dir, INDEX_FILE, key, _encode_index(*built))
    grams, offsets, ids = built
    ids.flags.writeable = False  # the postings below are views into this one array
    return {gram: ids[offsets[j] : offsets[j + 1]] for j, gram in enumerate(grams)}


class Matcher:
    """Name index over the knowledge base with exact, stripped, span and fuzzy lookups."""

    def __init__(self, kb: KnowledgeBase, score_cutoff: float = 85.0, margin: float = 6.0,
                 min_fuzzy_length: int = 5, shortlist: int = 48, cache_dir=None):
        self.kb = kb
        self.cutoff = score_cutoff
        self.margin = margin
        self.min_fuzzy_length = min_fuzzy_length
        self.shortlist = shortlist
        self.keys = [k for k in kb.names if len(k) >= 3]
        # Building the index takes most of a second; cache_dir (optional) keeps it across starts.
        self.postings = _index(self.keys, kb.version, cache_dir)
        self._sound_index: dict[str, tuple[str, ...]] | None = None
        self._numbered_heads: frozenset[str] | None = None
        self.lengths = np.fromiter((len(k) for k in self.keys), dtype=np.int32, count=len(self.keys))
        # The shortlist's postings by name length (built on first use: see _ranking and _by_length).
        self._max_length = int(self.lengths.max(initial=0))
        self._ranks: tuple[np.ndarray, np.ndarray, list[int]] | None = None
        self._length_postings: dict[str, tuple[np.ndarray, array.array] | None] = {}

    # -- exact ---------------------------------------------------------------------------------
    def lookup(self, name: str) -> NameEntry | None:
        """Exact lookup of a normalised name."""
        return self.kb.names.get(name)

    def _stripped(self, key: str) -> str:
        words = [w for w in strip_forms(_DAY_PACK.sub(" ", key)).split() if w not in FORM_WORDS]
        return " ".join(words)

    def _spans(self, key: str) -> list[tuple[str, NameEntry]]:
        """Known names inside a multi-word name, longest first, non-overlapping."""
        tokens = [t for t in key.replace("/", " / ").replace("+", " + ").split()]
        used = [False] * len(tokens)
        found = []
        for length in range(min(len(tokens), 6), 0, -1):
            for start in range(len(tokens) - length + 1):
                if any(used[start : start + length]):
                    continue
                span = " ".join(tokens[start : start + length])
                entry = self.kb.names.get(span) if len(span) >= 3 else None
                if entry:
                    found.append((start, span, entry))
                    used[start : start + length] = [True] * length
        return [(span, entry) for _, span, entry in sorted(found, key=lambda f: f[0])]

    # -- fuzzy ---------------------------------------------------------------------------------
    def _ranking(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Names ranked by (length, id): the id at each rank, each id's rank, and the first rank of each
        length (one past the longest at the end). Built on the first fuzzy query (~5 ms)."""
        if self._ranks is None:
            order = np.argsort(self.lengths, kind="stable").astype(np.int32)
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order), dtype=np.int32)
            firsts = np.searchsorted(self.lengths[order], np.arange(self._max_length + 2)).tolist()
            self._ranks = (order, rank, firsts)  # one assignment: a racing thread at worst builds it twice
        return self._ranks

    def _by_length(self, gram: str) -> tuple[np.ndarray, array.array] | None:
        """The gram's names as ascending ranks and where each length starts among them; None for a gram no
        name has or one too common to count. Built on the gram's first use."""
        entry = self._length_postings.get(gram, False)
        if entry is False:
            ids = self.postings.get(gram)
            entry = None
            if ids is not None and len(ids) <= COMMON_GRAM:
                _, rank, firsts = self._ranking()
                ranks = np.sort(rank[ids])
                # Compact starts (an int32 array): all 16.5k grams built hold ~7 MB of ranks and ~5 MB of these.
                entry = (ranks, array.array("i", np.searchsorted(ranks, firsts).tolist()))
            self._length_postings[gram] = entry
        return entry

    def _shortlist(self, key: str) -> list[int]:
        """Ids of the names sharing enough trigrams with the key and of similar length (the `shortlist` most
        shared at most), ascending."""
        # The names within the length slack are one range of ranks and one slice of each gram's ranks:
        # only those are counted (a fifth of the postings and names, typically), not all 106k names.
        slack = max(3, len(key) // 3)
        low = min(max(0, len(key) - slack), self._max_length + 1)
        high = min(len(key) + slack + 1, self._max_length + 1)
        built = self._length_postings
        used, parts = 0, []
        for gram in _trigrams(key):
            entry = built.get(gram, False)
            if entry is False:
                entry = self._by_length(gram)
            # Grams shared by thousands of names ("ine", "in ") say little and cost most: None.
            if entry is not None:
                used += 1
                ranks, starts = entry
                if starts[low] < starts[high]:
                    parts.append(ranks[starts[low] : starts[high]])
        # Two edits leave roughly half of a name's trigrams intact; fewer shared means no match.
        threshold = max(2, int(0.4 * used))
        if len(parts) < threshold:
            return []
        order, _, firsts = self._ranking()
        # The count, the cut and the order in one C call (a dozen numpy calls before): ascending ids,
        # and past `shortlist` names the most shared, a tie going to the lower id on every machine.
        return top_shared(parts, order, firsts[low], firsts[high] - firsts[low], threshold, self.shortlist)

    def fuzzy(self, key: str) -> list[Candidate]:
        """Candidates scoring within reach of the cutoff, best first, one per drug."""
        ids = self._shortlist(key)
        if not ids:
            return []
        choices = [self.keys[i] for i in ids]
        # processor=None: keys and query are already normalised by text.normalize.
        scored = process.extract(key, choices, scorer=OSA.normalized_similarity, processor=None,
                                 limit=len(choices),
                                 score_cutoff=(self.cutoff - 2 * self.margin) / 100)
        by_drug: dict[tuple[str, ...], Candidate] = {}
        for name, score, _ in scored:
            entry = self.kb.names[name]
            if entry.ingredients not in by_drug or by_drug[entry.ingredients].score < score:
                by_drug[entry.ingredients] = Candidate(entry.ingredients, name, 100 * score)
        return sorted(by_drug.values(), key=lambda c: (-c.score, c.generic))

    def _decide(self, candidates: list[Candidate], key: str = "") -> MatchResult:
        if not candidates or candidates[0].score < self.cutoff:
            phonetic = self._phonetic(key, candidates)
            if phonetic:
                return phonetic
        if not candidates or candidates[0].score < self.cutoff:
            return MatchResult("unmatched", candidates=tuple(candidates[:5]))
        best = candidates[0]
        unnumbered = _NUMBERED_LINE.sub("", best.matched_name)
        if key and key != best.matched_name and _NUMBERED_LINE.sub("", key) == unnumbered:
            # "anacin" vs "anacin 3": a numbered line extension is another product, often another drug.
            return MatchResult("unmatched", candidates=tuple(candidates[:5]))
        if self.kb.names[best.matched_name].via == "class_term":
            return MatchResult("unmatched", candidates=tuple(candidates[:5]))  # never fuzzy into a class
        lookalikes = {g for i in best.ingredients for g in self.kb.lookalikes.get(i, ())}
        rivals = [c for c in candidates[1:]
                  if (c.score >= self.cutoff and best.score - c.score < self.margin)
                  or (set(c.ingredients) & lookalikes and c.score >= self.cutoff - self.margin)]
        if rivals:
            return MatchResult("ambiguous", candidates=(best, *rivals))
        # The runners-up are the competitors the match beat (explainability).
        return MatchResult("matched", "fuzzy", best, tuple(candidates[1:3]))

    def _phonetic(self, key: str, candidates: list[Candidate]) -> MatchResult | None:
        """A short misspelling ("sipro", "xanex") that sounds like exactly one drug, no other in reach.

        The metaphone keys (jellyfish) must be equal; every drug of that sound, and every candidate
        the fuzzy search found, must be that one drug. Otherwise: no acceptance.
        """
        if not key or " " in key or not self.min_fuzzy_length <= len(key) <= 10 \
                or any(ch.isdigit() for ch in key):
            return None
        # Names of the same sound that are also spelt within reach (half the letters or more in
        # place); "sancuso" sounds like "zanax" but is no competitor for it, "xanax" is.
        scored = sorted(((100 * OSA.normalized_similarity(key, n), n) for n in self._sounds().get(
            jellyfish.metaphone(key), ())), reverse=True)
        near = [(score, n) for score, n in scored if score >= PHONETIC_REACH]
        drugs = {self.kb.names[n].ingredients for _, n in near} | {c.ingredients for c in candidates}
        if len(drugs) != 1 or not near or near[0][0] < PHONETIC_FLOOR:
            return None
        score, name = near[0]
        beaten = tuple(Candidate(self.kb.names[n].ingredients, n, sc) for sc, n in scored
                       if self.kb.names[n].ingredients not in drugs)[:2]
        return MatchResult("matched", "phonetic", Candidate(self.kb.names[name].ingredients, name, score), beaten)

    def _sounds(self) -> dict[str, tuple[str, ...]]:
        """metaphone -> one-word drug names (built on first use: ~50 ms)."""
        if self._sound_index is None:
            index: dict[str, list[str]] = {}
            for name, entry in self.kb.names.items():
                # Names, never codes or abbreviations ("ddvp", dichlorvos, is not "DDAVP").
                if " " in name or not self.min_fuzzy_length <= len(name) <= 12 \
                        or entry.via not in ("exact", "brand", "synonym") or not entry.ingredients \
                        or not set(name) & set("aeiou") or not name.isalpha():
                    continue
                index.setdefault(jellyfish.metaphone(name), []).append(name)
            self._sound_index = {k: tuple(v) for k, v in index.items()}
        return self._sound_index

    # -- entry point ---------------------------------------------------------------------------
    def _from_entry(self, entry: NameEntry, key: str, via: str | None = None) -> MatchResult:
        if entry.via == "ambiguous":
            return MatchResult("ambiguous", candidates=tuple(
                Candidate(alt, key, 100.0) for alt in entry.alternatives))
        if entry.via == "class_term":
            # "antibiotics", "antiemetics": a class, not a drug we could check.
            return MatchResult("unmatched")
        return MatchResult("matched", via or entry.via, Candidate(entry.ingredients, key, 100.0))

    def _exact(self, key: str) -> MatchResult | None:
        entry = self.lookup(key)
        if entry:
            return self._from_entry(entry, key)
        stripped = self._stripped(key)
        entry = self.lookup(stripped) if stripped and stripped != key else None
        if entry:
            return self._from_entry(entry, stripped, "synonym" if entry.via == "exact" else None)
        return None

    def _explained(self, key: str, spans: list[tuple[str, NameEntry]]) -> bool:
        """True when every word outside the matched spans is a dose, form, salt or descriptor."""
        words = key.split()
        covered = set()
        for span, _ in spans:
            n = len(span.split())
            for i in range(len(words) - n + 1):
                if " ".join(words[i : i + n]) == span:
                    covered.update(range(i, i + n))
                    break
        return all(
            i in covered or w in DESCRIPTOR_WORDS or w in FORM_WORDS or w in SALT_WORDS
            or w.replace(".", "").isdigit()
            for i, w in enumerate(words)
        )

    def _single(self, key: str, exact_tried: bool = False) -> MatchResult:
        """Match one name (no combination separators): exact, known span, then fuzzy."""
        exact = None if exact_tried else self._exact(key)
        if exact:
            return exact
        stripped = self._stripped(key) or key
        spans = [(s, e) for s, e in self._spans(stripped) if e.via not in ("ambiguous", "class_term")]
        if spans and self._explained(stripped, spans):
            ingredients = tuple(sorted({i for _, e in spans for i in e.ingredients}))
            via = spans[0][1].via if len(spans) == 1 else "synonym"
            return MatchResult("matched", via, Candidate(ingredients, " + ".join(s for s, _ in spans), 100.0))
        if spans:
            # A known drug name sits in the line beside words we cannot read. Fuzzy may read the
            # whole ("insulin glargin"), but never jump to another molecule ("doxorubicin liposomal"
            # is not "daunorubicin liposomal"); else find that drug when the rest is not another drug.
            fuzzy = self._decide(self.fuzzy(stripped), stripped) \
                if len(stripped.replace(" ", "")) >= self.min_fuzzy_length else MatchResult("unmatched")
            if fuzzy.status == "matched" and all(
                    f" {span} " in f" {fuzzy.best.matched_name} " or set(entry.ingredients) & set(fuzzy.ingredients)
                    for span, entry in spans):
                return fuzzy
            return self._in_text(stripped, spans)
        if len(stripped.replace(" ", "")) < self.min_fuzzy_length:
            return MatchResult("unmatched")
        return self._decide(self.fuzzy(stripped), stripped)

    def _in_text(self, key: str, spans: list[tuple[str, NameEntry]]) -> MatchResult:
        """One drug named inside other words ("my prilosec"); unmatched/ambiguous when any doubt."""
        drugs = {e.ingredients for _, e in spans}
        if len(drugs) != 1:
            return MatchResult("unmatched")
        covered = {w for span, _ in spans for w in span.split()}
        strong = all(e.via in ("exact", "brand") for _, e in spans)
        for word in key.split():
            if word in _NEGATION_WORDS:
                return MatchResult("unmatched")  # "no aspirin", "penicillin allergy": not taken
            if word in covered or word in _FILLER_WORDS or word in DESCRIPTOR_WORDS \
                    or word.replace(".", "").isdigit():
                continue
            own = self.lookup(word)
            if own and own.via == "class_term":
                continue  # "antibiotic ciprofloxacin": a class word, not another drug
            if not strong or own:
                # Beside a weak name (a code, a synonym like "alcohol") or another name: do not pick.
                return MatchResult("unmatched")
            near = [c for c in self.fuzzy(word) if c.score >= self.cutoff - self.margin
                    and self.kb.names[c.matched_name].via != "class_term"] if len(word) >= 4 else []
            if any(c.ingredients not in drugs for c in near):
                # Another word in the line reads like another drug: do not pick.
                return MatchResult("ambiguous", candidates=tuple(near[:4]))
        span, entry = spans[0]
        return MatchResult("matched", "in_text", Candidate(entry.ingredients, span, 100.0))

    def _rxnorm(self, text: str, brands: tuple[str, ...]) -> MatchResult | None:
        """RxNorm multi-ingredient strings and packs: every ' / ' part must be a drug."""
        if not _RXNORM_MULTI.search(text):
            return None
        body = _PACK_COUNT.sub(" ", re.sub(r"\[[^\]]*\]", " ", text))
        names = []
        for part in re.split(r"\s/\s", body):
            name = normalize(parse_line(part).name)
            if name and name not in _INERT and name not in names:
                names.append(name)
        if len(names) < 1:
            return None
        results = [self._single(n) for n in names]
        if any(r.status != "matched" for r in results):
            return MatchResult("unmatched") if not any(r.status == "ambiguous" for r in results) else \
                MatchResult("ambiguous", candidates=tuple(c for r in results for c in r.candidates))
        ingredients = tuple(sorted({i for r in results for i in r.ingredients}))
        via = "fuzzy" if any(r.via == "fuzzy" for r in results) else "synonym" if len(results) > 1 else results[0].via
        for brand in brands:
            entry = self.lookup(self._stripped(normalize(brand)) or normalize(brand))
            words = {w for i in ingredients for w in i.split()}
            if entry and entry.via not in ("ambiguous", "class_term") and entry.ingredients != ingredients \
                    and not any(set(i.split()) & words for i in entry.ingredients):
                # "[Brand]" names other ingredients than the clinical drug string: never pick one.
                return MatchResult("ambiguous", candidates=(
                    Candidate(ingredients, " + ".join(names), 100.0),
                    Candidate(entry.ingredients, normalize(brand), 100.0)))
        score = min(r.best.score for r in results)
        return MatchResult("matched", via, Candidate(ingredients, " + ".join(names), score))

    def match(self, parsed: ParsedMedication) -> MatchResult:
        """Match one parsed medication."""
        rxnorm = self._rxnorm(parsed.text, parsed.other_names) if " / " in parsed.text or "{" in parsed.text \
            else None
        if rxnorm:
            return rxnorm
        names = [normalize(n) for n in (parsed.name, *parsed.other_names)]
        names = [n for n in names if n]
        # ("w" first: the pattern needs one, and most lines have none.)
        if names and ("w" in parsed.text or "W" in parsed.text) and _WITH.search(parsed.text) \
                and not _WITH.search(parsed.name):
            # "Tylenol with codeine 300/30": the parser stops the name at "with".
            joined = self.match(parse_line(_WITH.sub(" + ", parsed.text)))
            if joined.status == "matched":
                return joined
        numbered = self._numbered_line(parsed.text, names)
        if numbered:
            return numbered
        for key in names:
            exact = self._exact(key)
            if exact and exact.status != "unmatched":
                return exact
        if not names:
            # Nothing read as a name ("oral contraceptives" starts with a route, "stopped taking
            # omeprazole" with a stop word): the whole line, then a drug inside it.
            whole = normalize(re.sub(r"\[[^\]]*\]", " ", parsed.text))
            return (self._exact(whole) if whole else None) or self._from_text(parsed.text)
        key = names[0]
        parts = [p for p in _PART_SEPARATORS.split(key) if p]
        if len(parts) < 2:
            result = self._single(key, exact_tried=True)
            return result if result.status != "unmatched" or not parsed.text else self._from_text(parsed.text)
        # "piperacilin/tazobactam", "hydrocodone + acetaminophen": every part must be a drug.
        results = [self._single(p) for p in parts]
        if any(r.status == "ambiguous" for r in results):
            return MatchResult("ambiguous", candidates=tuple(c for r in results for c in r.candidates))
        if any(r.status != "matched" for r in results):
            return MatchResult("unmatched")
        ingredients = tuple(sorted({i for r in results for i in r.ingredients}))
        via = "fuzzy" if any(r.via == "fuzzy" for r in results) else "synonym"
        score = min(r.best.score for r in results)
        return MatchResult("matched", via, Candidate(ingredients, " + ".join(parts), score))

    def _numbered_line(self, text: str, names: list[str]) -> MatchResult | None:
        """Ambiguous when the name plus the number after it is another product ("Anacin 3 tabs")."""
        own = self.lookup(names[0]) if names else None
        if not own or names[0] not in self._numbered():
            return None  # (looked up first: a misspelt name, or one no numbered product shares, needs no more)
        words, name = normalize(text).split(), names[0].split()
        if len(words) <= len(name) or words[: len(name)] != name or not words[len(name)].isdigit():
            return None
        line = f"{names[0]} {words[len(name)]}"
        other = self.lookup(line)
        if not other or own.ingredients == other.ingredients:
            return None
        # "3" may be the count of tablets or the product's number: never pick one.
        return MatchResult("ambiguous", candidates=(Candidate(own.ingredients, names[0], 100.0),
                                                    Candidate(other.ingredients, line, 100.0)))

    def _numbered(self) -> frozenset[str]:
        """Names that some known name extends by a number ("anacin" of "anacin 3"); built on first use (~20 ms)."""
        if self._numbered_heads is None:
            heads = set()
            for name in self.kb.names:
                head, _, last = name.rpartition(" ")
                if head and last.isdigit():
                    heads.add(head)
            self._numbered_heads = frozenset(heads)
        return self._numbered_heads

    def _from_text(self, text: str) -> MatchResult:
        """The whole line, when the parsed name found nothing: one known drug among other words."""
        whole = normalize(re.sub(r"\[[^\]]*\]", " ", text))
        exact = self._exact(whole) if whole else None
        if exact:
            return exact  # "contraceptives, oral": the parsed name stopped at a route word
        key = self._stripped(whole)
        if not key or _PART_SEPARATORS.search(key):
            return MatchResult("unmatched")
        spans = [(s, e) for s, e in self._spans(key) if e.via not in ("ambiguous", "class_term")]
        if not spans:
            return MatchResult("unmatched")
        return self._in_text(key, spans)
