"""Counting what a Tables API client reads: entities and requests per table, seen in each
response the Azure SDK hands its `raw_response_hook` (the network boundary)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import unquote, urlsplit


class EntityCounter:
    """The entities and the GET requests of each table, from 200 responses."""

    def __init__(self) -> None:
        self.entities: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()

    def __call__(self, pipeline_response: Any) -> None:
        request, response = pipeline_response.http_request, pipeline_response.http_response
        if request.method != "GET" or response.status_code != 200:
            return
        table = unquote(urlsplit(request.url).path.rsplit("/", 1)[-1]).partition("(")[0]
        body = json.loads(response.text())
        self.requests[table] += 1
        self.entities[table] += len(body["value"]) if "value" in body else 1

    def reset(self) -> None:
        """Count from zero again."""
        self.entities.clear()
        self.requests.clear()
