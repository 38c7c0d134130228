"""CDS Hooks 2.0 adapter and FHIR R4 intake: discovery, service calls, cards, feedback, JWT."""
