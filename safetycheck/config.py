"""Default settings; values only. Override with SAFETYCHECK_* environment variables or test_config."""

DEFAULTS = {
    # Fuzzy matching: a candidate needs this score (normalised OSA edit similarity, 0-100)...
    "MATCH_SCORE_CUTOFF": 85.0,
    # ...and must beat the best candidate naming a different drug by this margin, or it is ambiguous.
    "MATCH_AMBIGUITY_MARGIN": 6.0,
    # Names shorter than this are never fuzzy-matched (ASA, MTX, dex: exact or nothing).
    "MATCH_MIN_FUZZY_LENGTH": 5,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Longer URLs get a JSON 414 (gunicorn.conf.py lets lines up to 8190 bytes reach the app).
    "MAX_URL_LENGTH": 4096,
    # /readyz says not ready when the disk holding the audit database has less free space than this.
    "READY_MIN_FREE_BYTES": 64 * 1024 * 1024,
}
