"""What the HTTP routes accept as a release or operation id and as a service or environment name.

Shapes only, checked before any lookup so that nothing odd reaches the ledger or Durable;
whether such a release, service or environment exists is the caller's question.
"""

from __future__ import annotations

import re

INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,255}")   # a Durable instance id
NAME = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")         # a service or environment
