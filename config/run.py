"""Run a management command with this process's Prometheus metrics on a port.

    python -m config.run --metrics-port 9101 ingest --broker kestrel-fx

For the long-running processes without HTTP (ingestors, aggregators): the command runs as with
``manage.py``, and the process's registry (CPU, memory, GC, anything it registers) is served on the
port from a daemon thread. The app's shared counters are on every web process's ``/metrics``.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m config.run")
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("METRICS_PORT", "0") or 0))
    args, command = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    if args.metrics_port:
        from config.metrics import metrics_serve

        metrics_serve(port=args.metrics_port)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *command])


if __name__ == "__main__":
    main()
