"""The v1 JSON contract: request schemas, body -> CheckRequest, result -> body (no Flask)."""
