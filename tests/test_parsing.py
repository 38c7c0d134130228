"""Free-text medication lines are read the way clinicians and pharmacy systems write them."""

import pytest

from safetycheck.parsing import parse_line, split_lines


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Eliquis 5 mg PO BID",
         {"name": "Eliquis", "dose": 5.0, "unit": "mg", "route": "oral", "frequency": "BID"}),
        ("ASA 81mg daily", {"name": "ASA", "dose": 81.0, "unit": "mg", "frequency": "daily"}),
        ("1. omeprazole 20mg cap DR qAM",
         {"name": "omeprazole", "dose": 20.0, "unit": "mg", "form": "cap dr", "frequency": "qAM"}),
        ("\u2022 Ondansetron 8 mg q8h prn nausea",
         {"name": "Ondansetron", "dose": 8.0, "unit": "mg", "frequency": "q8h", "prn": True,
          "indication": "nausea"}),
        ("24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
         {"name": "Metformin hydrochloride", "dose": 500.0, "unit": "mg", "route": "oral",
          "form": "extended release tablet"}),
        ("Carbamazepine[Tegretol]", {"name": "Carbamazepine", "other_names": ["Tegretol"]}),
        ("NDA020800 0.3 ML Epinephrine 1 MG/ML Auto-Injector",
         {"name": "Epinephrine", "dose": 1.0, "unit": "mg/mL", "form": "auto-injector"}),
        ("Paxlovid 300/100 mg", {"name": "Paxlovid", "dose_text": "300/100", "unit": "mg"}),
        ("Lovenox 40 mg SC daily",
         {"name": "Lovenox", "dose": 40.0, "unit": "mg", "route": "subcutaneous",
          "frequency": "daily"}),
        ("prednisone 10mg once daily",
         {"name": "prednisone", "dose": 10.0, "unit": "mg", "frequency": "once daily"}),
        ("St. John's Wort 300 mg TID",
         {"name": "St. John's Wort", "dose": 300.0, "unit": "mg", "frequency": "TID"}),
        ("insulin glargine 20 units qhs",
         {"name": "insulin glargine", "dose": 20.0, "unit": "units", "frequency": "qhs"}),
        ("5-FU", {"name": "5-FU"}),
    ],
)
def test_parse_line(line, expected):
    assert parse_line(line).as_dict() == expected


def test_parse_keeps_raw_text():
    assert parse_line("  Cipro 500 mg PO BID ").text == "Cipro 500 mg PO BID"


def test_split_lines_drops_only_blank_bullets_and_numbering():
    pasted = "1. aspirin 81 mg\n\n   \n- omeprazole\n\u2022 Cipro\n2) apixaban 5 mg BID\nsee attached\n"
    assert split_lines(pasted) == [
        "aspirin 81 mg", "omeprazole", "Cipro", "apixaban 5 mg BID", "see attached",
    ]
