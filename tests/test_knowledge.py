"""The knowledge base is validated completely at start-up; a bad file stops it with file, row, fix."""

import shutil
import subprocess
import sys

import pytest

from safetycheck import create_app
from safetycheck.errors import DataFileError
from safetycheck.knowledge import load_knowledge_base

from .conftest import DATA_DIR, ROOT


@pytest.fixture()
def tiny(tmp_path):
    """A copy of the real data/ to break one thing in."""
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def _append(path, line):
    """Append a CSV row; return its row number as the loader reports it."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize(
    ("filename", "line", "expected"),
    [
        ("memberships.csv", "warfarine,PPI,fda,,,FDA-T1,",
         "memberships.csv: row {row}: drug: unknown drug 'warfarine' (did you mean 'warfarin'?)"),
        ("memberships.csv", "omeprazole,PPX,fda,,,FDA-T1,", "class: unknown class 'PPX'"),
        ("memberships.csv", "omeprazole,PPI,fda,,,,", "row {row}: source: Shorter than minimum length 1"),
        ("memberships.csv", "omeprazole,PPI,protocol,,,SEED-003,", "a protocol row needs a scope"),
        ("memberships.csv", "omeprazole,PPI,guess,,,SEED-003,", "authority: Must be one of"),
        ("memberships.csv", "omeprazole,PPI,literature,,,BR-PPI,",
         "duplicate of data/drug_lists/memberships.csv: row 117"),
        ("memberships.csv", "omeprazole,PPI,fda,,2,FDA-T1,",
         "factor: give a prednisone-equivalent factor on corticosteroid rows only"),
        ("synonyms.csv", "hydroxyzine,hydralazine,brand,made up", "'hydroxyzine' is itself the drug ['hydroxyzine']"),
        ("synonyms.csv", "ASA,acetaminophen,abbreviation,made up", "'ASA' already maps to ['aspirin']"),
        ("drugs.csv", "aspirin,made up,", "'aspirin' is already in the vocabulary"),
        ("synonyms.csv", "Foo,aspirin,nickname,made up", "kind: Must be one of"),
        ("synonyms.csv", "Foo,aspirin,brand", "wrong number of fields"),
        ("combinations.csv", "Solo,aspirin,made up", "a combination needs two or more"),
        ("classes.csv", "PPI,acid_suppression,again,made up", "class PPI is defined twice"),
        ("lookalikes.csv", "zzqx,aspirin,made up", "unknown name 'zzqx'"),
    ],
)
def test_each_defect_is_reported_with_file_row_and_fix(tiny, filename, line, expected):
    row = _append(tiny / "drug_lists" / filename, line)
    with pytest.raises(DataFileError) as err:
        load_knowledge_base(tiny)
    assert expected.format(row=row) in str(err.value)
    assert f"data/drug_lists/{filename}" in str(err.value)


def test_unknown_column_is_refused(tiny):
    path = tiny / "drug_lists" / "drugs.csv"
    path.write_text("generic,source,note,colour\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"drugs.csv: header: columns missing \[\], unknown \['colour'\]"):
        load_knowledge_base(tiny)


def test_missing_file_is_refused(tiny):
    (tiny / "drug_lists" / "lookalikes.csv").unlink()
    with pytest.raises(DataFileError, match="lookalikes.csv: file is missing"):
        load_knowledge_base(tiny)


def test_all_problems_are_collected_in_one_run(tiny):
    _append(tiny / "drug_lists" / "memberships.csv", "warfarine,PPI,fda,,,FDA-T1,")
    _append(tiny / "drug_lists" / "synonyms.csv", "Foo,aspirin,nickname,made up")
    with pytest.raises(DataFileError) as err:
        load_knowledge_base(tiny)
    assert len(err.value.problems) == 2


def test_bad_data_stops_the_app(tiny):
    _append(tiny / "drug_lists" / "memberships.csv", "warfarine,PPI,fda,,,FDA-T1,")
    with pytest.raises(DataFileError, match="warfarine"):
        create_app({"TESTING": True, "DATA_DIR": str(tiny), "DEV": "1"})


def test_version_is_a_content_hash(tiny, tmp_path):
    first = load_knowledge_base(tiny).version
    copy = tmp_path / "elsewhere"
    shutil.copytree(tiny, copy)
    assert load_knowledge_base(copy).version == first, "the hash must not depend on the checkout path"
    _append(copy / "drug_lists" / "drugs.csv", "made-up test drug x,test,")
    changed = load_knowledge_base(copy).version
    assert changed.startswith("sha256:") and changed != first


def test_real_data_loads_and_every_row_has_a_source(kb):
    assert kb.memberships and kb.classes
    for memberships in kb.memberships.values():
        for m in memberships:
            assert m.source.strip()


def test_cli_validates_without_flask():
    ok = subprocess.run([sys.executable, "-m", "safetycheck.knowledge", str(DATA_DIR)],
                        capture_output=True, text=True, cwd=ROOT, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "ruleset_version sha256:" in ok.stdout


def test_cli_exits_non_zero_naming_the_problem(tiny):
    row = _append(tiny / "drug_lists" / "memberships.csv", "warfarine,PPI,fda,,,FDA-T1,")
    bad = subprocess.run([sys.executable, "-m", "safetycheck.knowledge", str(tiny)],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    assert bad.returncode == 1
    assert f"memberships.csv: row {row}: drug: unknown drug 'warfarine'" in bad.stderr


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("filename", "old", "new", "expected"),
    [
        ("protocols.toml", 'op = ">="\n  threshold = 1000', 'op = "=>"\n  threshold = 1000',
         "data/protocols.toml: protocol.1.lab_criteria.1.op: Must be one of"),
        ("protocols.toml", 'regimen = "ipd"', 'regimen = "ipx"', "unknown regimen 'ipx'"),
        ("protocols.toml", 'classes = ["GCSF"]', 'classes = ["GCSFX"]', "unknown class 'GCSFX'"),
        ("protocols.toml", "window_days = 14\n  anchor = \"screening\"", "anchor = \"screening\"",
         "give exactly one of window_days, window_months"),
        ("rules/dose_modifications.toml", 'when = { lab = "anc", op = "<", value = 500 }',
         'when = { lab = "anx", op = "<", value = 500 }', "unknown lab 'anx'"),
        ("rules/dose_modifications.toml", 'id = "pom-plt-hold"', 'id = "pom-anc-hold"',
         "rule id 'pom-anc-hold' also used"),
        ("rules/interactions.toml", 'affects = "ixazomib"', 'affects = "ixazomibb"',
         "unknown drug 'ixazomibb'"),
        ("rules/interactions.toml", 'severity = "major"', 'severity = "severe"', "Must be one of"),
        ("labs.toml", "unit = \"/uL\"\nbounds", "unitx = \"/uL\"\nbounds", "labs.toml: anc.unitx: Unknown field"),
        ("regimens.toml", 'levels_mg = [4, 3, 2, 1]', 'levels_mg = "4,3"', "Not a valid list"),
    ],
)
def test_rule_file_defects_stop_start_up(tiny, filename, old, new, expected):
    _edit(tiny / filename, old, new)
    with pytest.raises(DataFileError) as err:
        load_knowledge_base(tiny)
    assert expected in str(err.value)


def test_seed_003_calcium_is_flagged_not_enforced(kb):
    mezi = kb.protocols["mezi-ixa-dex"]
    assert "calcium" not in {c["value"] for c in mezi["lab_criteria"]}
    flagged = {f["id"]: f for f in mezi["flagged"]}
    assert "mezi-calcium" in flagged and "not enforced" in flagged["mezi-calcium"]["note"]
