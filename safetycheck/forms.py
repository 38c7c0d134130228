"""Salt, ester and formulation words: forms of one molecule, which carry the molecule's classes."""

import re

SALT_WORDS = frozenset(
    "hydrochloride hcl hydrobromide hbr sodium potassium calcium magnesium citrate maleate mesylate "
    "besylate tartrate bitartrate succinate fumarate sulfate sulphate bisulfate phosphate acetate "
    "dihydrate monohydrate trihydrate anhydrous disodium dipotassium tromethamine lactate "
    "propionate dipropionate valerate etexilate medoxomil axetil hyclate xinafoate bromide "
    "chloride pamoate free base sesquihydrate "
    # Esters named in labels and the vocabulary (dexamethasone palmitate / isonicotinate /
    # metasulfobenzoate, testosterone cypionate / enanthate, haloperidol decanoate).
    "palmitate isonicotinate metasulfobenzoate cypionate enanthate decanoate".split()
)
# Formulation words: the same molecule in another vehicle or source (liposomal doxorubicin is
# doxorubicin; heparin sodium, porcine is heparin; cycloSPORINE, modified is cyclosporine).
FORMULATION_WORDS = frozenset(
    "liposomal liposome liposomes modified porcine bovine conventional usp".split()
)
_FORMULATION_PHRASES = re.compile(r"\b(?:lipid complex|intrauterine system|intrauterine device|"
                                  r"transdermal system|extended release|delayed release)\b")


_FORM_WORDS = SALT_WORDS | FORMULATION_WORDS


def strip_forms(key: str) -> str:
    """A normalised name without its salt, ester and formulation words ('' when nothing is left)."""
    words = _FORMULATION_PHRASES.sub(" ", key).split()
    if _FORM_WORDS.isdisjoint(words):
        return " ".join(words)  # most names: no word to drop, no per-word test in Python
    return " ".join(w for w in words if w not in _FORM_WORDS)


def base_molecule(key: str, molecules) -> str | None:
    """The molecule a salt/ester/formulation name is a form of, when that molecule is known."""
    base = strip_forms(key)
    return base if base and base != key and base in molecules else None
