"""Prefect flows, tasks and the `bellwether` CLI.

Importing this package sets safe defaults for Prefect's local (ephemeral) mode before Prefect
itself is imported: no analytics calls on a machine without network, and a start-up timeout
long enough for a 2-core machine. Anything already set in the environment wins.
"""

import os

_PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "DO_NOT_TRACK": "1",
}
for _key, _value in _PREFECT_DEFAULTS.items():
    os.environ.setdefault(_key, _value)
