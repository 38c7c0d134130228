"""Exceptions shared by the core and the adapters."""


class SafetycheckError(Exception):
    """Base class for errors raised by safetycheck."""


class DataFileError(SafetycheckError):
    """One or more knowledge-base files are invalid; the app must not start."""

    def __init__(self, problems):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the knowledge base:\n{lines}")


class StoreUnavailable(SafetycheckError):
    """The audit store cannot take or vouch for a check (missing, replaced, read-only, full): 503, no advice."""
