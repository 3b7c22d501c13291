"""`releasectl`: the operator's command line over the app's HTTP API.

List and show releases, approve or reject one through its approval page (JSON POST, a
signed link or a release id with its token), roll an environment back, redeploy a past
release. Tables with `rich`, or the API's JSON with `--json`. Exit codes: 0 done, 1 the
API refused or failed (its one-line reason), 2 a usage error, 3 the API cannot be reached.
Talks only HTTP: it never reads the ledger, Durable or any app setting itself.
"""

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
