"""Validate data/ without Flask: `python -m safetycheck.knowledge [DATA_DIR]`; exit 1 on any problem.

It also fills the start-up cache ($SAFETYCHECK_CACHE_DIR, default instance/cache), so that the
server workers `make run` starts next find it warm.
"""

import os
import sys
import time
from pathlib import Path

from ..errors import DataFileError
from ..matching import Matcher
from . import load_knowledge_base, vocabulary


def main(argv: list[str]) -> int:
    """Load the knowledge base, print its rule-set version or every problem found."""
    data_dir = Path(argv[0]) if argv else Path("data")
    cache_dir = os.environ.get("SAFETYCHECK_CACHE_DIR", "instance/cache") or None
    started = time.perf_counter()
    try:
        kb = load_knowledge_base(data_dir, vocab=vocabulary.load(cache_dir=cache_dir))
    except DataFileError as err:
        print(err, file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    Matcher(kb, cache_dir=cache_dir)
    members = sum(len(m) for m in kb.memberships.values())
    print(f"knowledge base OK: {len(kb.names)} names, {len(kb.generics)} generics, "
          f"{len(kb.classes)} classes, {members} class memberships ({elapsed:.2f} s)")
    print(f"ruleset_version {kb.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
