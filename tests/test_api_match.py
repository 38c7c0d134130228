"""POST /api/v1/match per the contract; /healthz."""

from .conftest import keyed_client


def test_healthz(client, kb):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "ruleset_version": kb.version}


def test_match_answers_per_contract(client):
    response = client.post("/api/v1/match", json={"names": ["Cipro 500 mg PO BID", "zorbatrexine"]})
    assert response.status_code == 200
    cipro, unknown = response.json["results"]
    assert cipro["index"] == 0
    assert cipro["input"] == "Cipro 500 mg PO BID"
    assert cipro["parsed"] == {"name": "Cipro", "dose": 500.0, "unit": "mg", "route": "oral",
                               "frequency": "BID"}
    assert cipro["status"] == "matched"
    assert cipro["match"]["generic"] == "ciprofloxacin"
    assert cipro["match"]["via"] == "brand"
    assert cipro["match"]["score"] == 100
    assert cipro["match"]["ingredients"] == ["ciprofloxacin"]
    assert cipro["candidates"] == []
    assert "CYP1A2_STRONG_INHIBITOR" in cipro["classes"]
    assert {"drug", "class", "authority", "scope", "source"} <= set(cipro["class_memberships"][0])
    assert unknown["status"] == "unmatched" and unknown["match"] is None and unknown["classes"] == []
    assert response.json["ruleset_version"].startswith("sha256:")


def test_ambiguous_lists_candidates_and_chooses_none(app):
    app.extensions["safetycheck"].matcher.cutoff = 70
    app.extensions["safetycheck"].matcher.margin = 30
    result = keyed_client(app).post("/api/v1/match", json={"names": ["hydroxazine"]}).json
    entry = result["results"][0]
    assert entry["status"] == "ambiguous"
    assert entry["match"] is None
    assert len(entry["candidates"]) >= 2


def test_missing_names_is_a_422_naming_the_field(client):
    response = client.post("/api/v1/match", json={})
    assert response.status_code == 422
    assert "names" in response.json["errors"]["json"]


def test_unknown_field_is_a_422(client):
    response = client.post("/api/v1/match", json={"names": ["aspirin"], "colour": "red"})
    assert response.status_code == 422
    assert "colour" in response.json["errors"]["json"]


def test_empty_name_is_a_422(client):
    response = client.post("/api/v1/match", json={"names": [""]})
    assert response.status_code == 422
    assert "names" in response.json["errors"]["json"]
