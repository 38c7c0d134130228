"""GET /cds-services: the services, hooks and prefetch templates (CDS Hooks 2.0 discovery)."""

PATIENT = "{{context.patientId}}"


def prefetch(kb, codes) -> dict:
    """Patient, active orders and statements, labs by every LOINC code we read, body weight, smoking status."""
    loincs = ",".join(f"http://loinc.org|{code}" for code in sorted(codes.loinc))
    return {
        "patient": f"Patient/{PATIENT}",
        "medicationRequests": f"MedicationRequest?patient={PATIENT}&status=active",
        "medicationStatements": f"MedicationStatement?patient={PATIENT}&status=active",
        "labs": f"Observation?patient={PATIENT}&category=laboratory&code={loincs}&_sort=-date",
        "weight": f"Observation?patient={PATIENT}&code=http://loinc.org|29463-7&_sort=-date&_count=1",
        "smoking": f"Observation?patient={PATIENT}&code=http://loinc.org|72166-2&_sort=-date&_count=1",
    }


SERVICES = (
    ("safetycheck-order-select", "order-select", "Myeloma regimen safety check (order select)",
     "Early check when a medication is selected: interactions, thromboprophylaxis and lab-based dose "
     "changes for ixazomib, pomalidomide and dexamethasone regimens; cards only for the selected orders."),
    ("safetycheck-order-sign", "order-sign", "Myeloma regimen safety check (order sign)",
     "Full check of the draft orders with the active medication list, labs and patient data before "
     "signing; every finding is stored as an audited check."),
    ("safetycheck-patient-view", "patient-view", "Myeloma regimen review (patient view)",
     "Checks the active medication list against the recognised myeloma regimen when the chart is opened."),
)


def services(kb, codes) -> dict:
    """The discovery document."""
    templates = prefetch(kb, codes)
    return {"services": [
        {"hook": hook, "id": sid, "title": title, "description": description, "prefetch": templates,
         "usageRequirements": "Register the client (JWT issuer, JWKS, audience) with the service operator; "
                              "the access token in fhirAuthorization needs read access to the prefetch "
                              "resources when prefetch is not sent."}
        for sid, hook, title, description in SERVICES]}


HOOK_OF = {sid: hook for sid, hook, _, _ in SERVICES}
