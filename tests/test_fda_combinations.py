"""Every FDA-T1 combination entry (clinical-facts.md §2.4, §2.6) reaches its class through an ingredient."""

import pytest

# (FDA-T1 entry, how a prescriber writes it, rule that must fire, ingredient that carries the class)
ENTRIES = [
    ("elvitegravir and ritonavir", "elvitegravir/ritonavir", "dex-cyp3a-strong-inhibitor", "ritonavir"),
    ("indinavir and ritonavir", "indinavir/ritonavir", "dex-cyp3a-strong-inhibitor", "ritonavir"),
    ("lopinavir and ritonavir", "Kaletra 400/100 mg PO BID", "dex-cyp3a-strong-inhibitor", "ritonavir"),
    ("paritaprevir and ritonavir and (ombitasvir and/or dasabuvir)", "Technivie 2 tabs PO daily",
     "dex-cyp3a-strong-inhibitor", "ritonavir"),
    ("saquinavir and ritonavir", "saquinavir/ritonavir", "dex-cyp3a-strong-inhibitor", "ritonavir"),
    ("tipranavir and ritonavir", "tipranavir/ritonavir", "dex-cyp3a-strong-inhibitor", "ritonavir"),
    ("lumacaftor and ivacaftor", "Orkambi 200/125 mg PO BID", "ixa-cyp3a-strong-inducer", "lumacaftor"),
]


@pytest.mark.parametrize(("entry", "text", "rule_id", "carrier"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_combination_entry_fires_through_its_carrier(shared_client, entry, text, rule_id, carrier):
    request = {"regimen": "ipd", "mode": "dispensing", "date": "2026-11-22", "day": 8,
               "patient": {"age_years": 64, "sex": "male", "weight_kg": 78, "on_dialysis": False},
               "medications": [{"text": "aspirin 81 mg PO daily"}, {"text": text}],
               "labs": {"anc": {"value": 2000, "unit": "/uL"}, "platelets": {"value": 150000, "unit": "/uL"},
                        "creatinine": {"value": 1.0, "unit": "mg/dL"},
                        "bilirubin_total": {"value": 0.6, "unit": "mg/dL", "uln": 1.2}}}
    body = shared_client.post("/api/v1/checks", json=request).json
    fired = [(w["rule_id"], w.get("drug"), w.get("authority")) for w in body["warnings"]]
    assert (rule_id, carrier, "fda") in fired, (entry, fired)
