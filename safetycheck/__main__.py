"""`python -m safetycheck check FILE.json` (or `- --regimen ipd` with medication text on stdin).

Prints the same JSON the API returns, without a server. Nothing is written to the audit store.
"""

import argparse
import json
import sys

from marshmallow import ValidationError

from .api import to_request
from .contract.schemas import CheckRequestSchema
from .knowledge import load_knowledge_base
from .models import InputError
from .pipeline import Checker, run_check


def main(argv=None) -> int:
    """Run one check from a JSON file or from medication text on stdin."""
    parser = argparse.ArgumentParser(prog="python -m safetycheck")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check one request")
    check.add_argument("file", help="request JSON file, or - to read medication text from stdin")
    check.add_argument("--regimen", help="regimen id when reading medication text")
    check.add_argument("--protocol")
    check.add_argument("--mode", default="dispensing", choices=("dispensing", "screening"))
    check.add_argument("--data-dir", default="data")
    args = parser.parse_args(argv)
    if args.file == "-":
        if not args.regimen:
            parser.error("--regimen is required when reading medication text from stdin")
        body = {"regimen": args.regimen, "mode": args.mode, "medication_text": sys.stdin.read()}
        if args.protocol:
            body["protocol"] = args.protocol
    else:
        with open(args.file, encoding="utf-8") as handle:
            body = json.load(handle)
    try:
        kb = load_knowledge_base(args.data_dir)
        request = CheckRequestSchema(regimens=kb.regimens).load(body)
        result = run_check(Checker(kb), to_request(request))
    except ValidationError as err:
        print(json.dumps({"code": 422, "status": "Unprocessable Entity", "errors": {"json": err.messages}},
                         indent=2), file=sys.stderr)
        return 2
    except InputError as err:
        print(json.dumps({"code": 422, "status": "Unprocessable Entity", "errors": {"json": err.errors}},
                         indent=2), file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
