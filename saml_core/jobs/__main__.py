"""`python -m saml_core.jobs worker JOBS_DIR [ARTIFACTS_ROOT]`: the detached worker process that
`JobQueue.ensure_worker` starts; it drains the queue and exits."""
from __future__ import annotations

import sys

from saml_core.jobs.job_queue import JobQueue


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3) or args[0] != "worker":
        print("usage: python -m saml_core.jobs worker JOBS_DIR [ARTIFACTS_ROOT]", file=sys.stderr)
        return 2
    JobQueue(args[1], args[2] if len(args) == 3 else None).work()
    return 0


if __name__ == "__main__":
    sys.exit(main())
