"""Kubernetes object rules the simulator shares: Status errors, timestamps, selectors, defaults.

Pure functions over plain JSON dicts (the wire shape), no I/O and no clock of their own.
Validation covers what the simulated API needs (Deployment shape, selector/labels, containers);
it is not the apiserver's full validation.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

JsonDict = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Deployment annotations the real controller does not copy to its ReplicaSets.
NOT_COPIED_ANNOTATIONS = frozenset({
    LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
})

_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ApiError(Exception):
    """An API failure, carried to the client as a `Status` object with the matching HTTP code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JsonDict | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> JsonDict:
        """The `Status` JSON body for this error."""
        body: JsonDict = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


@dataclass(frozen=True)
class GroupResource:
    """A resource type as named in messages (`deployments.apps`) and Status details."""

    group: str
    resource: str
    kind: str

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def details(self, name: str | None = None) -> JsonDict:
        details: JsonDict = {"group": self.group, "kind": self.resource}
        if name is not None:
            details = {"name": name, **details}
        return details

    def not_found(self, name: str) -> ApiError:
        return ApiError(404, "NotFound", f'{self} "{name}" not found', self.details(name))

    def already_exists(self, name: str) -> ApiError:
        return ApiError(409, "AlreadyExists", f'{self} "{name}" already exists', self.details(name))

    def conflict(self, name: str) -> ApiError:
        return ApiError(
            409, "Conflict",
            f'Operation cannot be fulfilled on {self} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again",
            self.details(name),
        )

    def invalid(self, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
        """422 Invalid; `causes` are (field, reason, message) like the apiserver's field errors."""
        text = ", ".join(f"{field}: {message}" for field, _, message in causes)
        if len(causes) > 1:
            text = f"[{text}]"
        details = {
            "name": name, "group": self.group, "kind": self.kind,
            "causes": [
                {"reason": reason, "message": message, "field": field}
                for field, reason, message in causes
            ],
        }
        qualified = f"{self.kind}.{self.group}" if self.group else self.kind
        return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {text}', details)


DEPLOYMENTS = GroupResource("apps", "deployments", "Deployment")
REPLICASETS = GroupResource("apps", "replicasets", "ReplicaSet")
PODS = GroupResource("", "pods", "Pod")
SECRETS = GroupResource("", "secrets", "Secret")
CONFIGMAPS = GroupResource("", "configmaps", "ConfigMap")
SERVICES = GroupResource("", "services", "Service")
SERVICEACCOUNTS = GroupResource("", "serviceaccounts", "ServiceAccount")
JOBS = GroupResource("batch", "jobs", "Job")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def rfc3339(seconds: float) -> str:
    """Seconds since the epoch as the API's RFC 3339 timestamp (UTC, whole seconds)."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def safe_encode(text: str) -> str:
    """apimachinery's SafeEncodeString: map each byte to an alphanumeric without vowels."""
    return "".join(_ALPHANUMS[byte % len(_ALPHANUMS)] for byte in text.encode())


def fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def template_without_hash(template: JsonDict) -> JsonDict:
    """A pod template minus the `pod-template-hash` label the controller adds to ReplicaSets."""
    clean = copy.deepcopy(template)
    labels = clean.get("metadata", {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return clean


def template_hash(template: JsonDict) -> str:
    """The `pod-template-hash` of a pod template (FNV-32a of its canonical JSON, safe-encoded)."""
    canonical = json.dumps(template_without_hash(template), sort_keys=True, separators=(",", ":"))
    return safe_encode(str(fnv32a(canonical.encode())))


def name_suffix(seed: str, length: int = 5) -> str:
    """A stable random-looking suffix for generated names (pods, generateName)."""
    return safe_encode(str(fnv32a(seed.encode())) * 2)[:length]


# --- label selectors -----------------------------------------------------------------------

# key, operator (In, NotIn, Exists, DoesNotExist), values
Requirement = tuple[str, str, frozenset[str]]

_SELECTOR_TERM = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|!=|=|\s+in\s+|\s+notin\s+)\s*(?P<value>\([^)]*\)|[A-Za-z0-9._-]*))?\s*$"
)


def parse_selector(text: str) -> list[Requirement]:
    """Parse a `labelSelector` query string (`a=b,c!=d,e in (x,y),!f,g`)."""
    requirements: list[Requirement] = []
    for term in _split_terms(text):
        if not term.strip():
            continue
        match = _SELECTOR_TERM.match(term)
        if match is None or (match["neg"] and match["op"]):
            raise bad_request(f"unable to parse requirement: invalid label selector: {term!r}")
        key, op, value = match["key"], (match["op"] or "").strip(), match["value"]
        if match["neg"]:
            requirements.append((key, "DoesNotExist", frozenset()))
        elif not op:
            requirements.append((key, "Exists", frozenset()))
        elif op in ("in", "notin"):
            if value is None or not value.startswith("("):
                raise bad_request(f"unable to parse requirement: expected '(' in {term!r}")
            values = frozenset(v.strip() for v in value[1:-1].split(",") if v.strip())
            requirements.append((key, "In" if op == "in" else "NotIn", values))
        elif value is not None and value.startswith("("):
            raise bad_request(f"unable to parse requirement: unexpected '(' in {term!r}")
        else:
            requirements.append((key, "NotIn" if op == "!=" else "In", frozenset({value or ""})))
    return requirements


def _split_terms(text: str) -> list[str]:
    terms, depth, current = [], 0, []
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return terms


def selector_requirements(selector: Mapping[str, Any]) -> list[Requirement]:
    """The requirements of a `LabelSelector` object (matchLabels and matchExpressions)."""
    requirements: list[Requirement] = [
        (key, "In", frozenset({value}))
        for key, value in (selector.get("matchLabels") or {}).items()
    ]
    for expression in selector.get("matchExpressions") or []:
        requirements.append((
            expression["key"], expression["operator"], frozenset(expression.get("values") or ()),
        ))
    return requirements


def matches(requirements: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    """Whether `labels` satisfy every requirement."""
    labels = labels or {}
    for key, op, values in requirements:
        present = key in labels
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op == "In" and (not present or labels[key] not in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
    return True


def parse_field_selector(text: str) -> list[tuple[str, bool, str]]:
    """`metadata.name=x,metadata.namespace!=y` as (field, equal, value) triples."""
    terms = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        match = re.match(r"^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$", term)
        if match is None or match[1] not in ("metadata.name", "metadata.namespace"):
            raise bad_request(f'"{term}" is not a known field selector: only metadata.name, '
                              "metadata.namespace")
        terms.append((match[1], match[2] != "!=", match[3]))
    return terms


def field_matches(terms: list[tuple[str, bool, str]], obj: JsonDict) -> bool:
    metadata = obj.get("metadata", {})
    return all(
        (metadata.get(field.split(".", 1)[1]) == value) == equal for field, equal, value in terms
    )


# --- Deployments -----------------------------------------------------------------------------

def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """Resolve an IntOrString like `25%` against `total` (surge rounds up, unavailable down)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    raise ValueError(f"invalid int or percentage: {value!r}")


def surge_and_unavailable(spec: JsonDict) -> tuple[int, int]:
    """maxSurge and maxUnavailable as pod counts for the spec's replicas (never both zero)."""
    replicas = spec.get("replicas", 1)
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    rolling = strategy.get("rollingUpdate") or {}
    surge = int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    unavailable = min(unavailable, replicas)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # the real controller does the same to make progress possible
    return surge, unavailable


def default_deployment(obj: JsonDict) -> JsonDict:
    """Fill in the defaults the apiserver sets on an apps/v1 Deployment (in place, returned)."""
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return obj
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxSurge", "25%")
                rolling.setdefault("maxUnavailable", "25%")
    template = spec.get("template")
    pod_spec = template.get("spec") if isinstance(template, dict) else None
    if isinstance(pod_spec, dict):
        pod_spec.setdefault("restartPolicy", "Always")
        pod_spec.setdefault("terminationGracePeriodSeconds", 30)
        pod_spec.setdefault("dnsPolicy", "ClusterFirst")
        pod_spec.setdefault("schedulerName", "default-scheduler")
        pod_spec.setdefault("securityContext", {})
        containers = pod_spec.get("containers")
        for container in containers if isinstance(containers, list) else []:
            if isinstance(container, dict):
                default_container(container)
    return obj


def default_container(container: JsonDict) -> None:
    """The apiserver's container defaults (pull policy from the tag, termination message)."""
    image = container.get("image")
    if isinstance(image, str) and "imagePullPolicy" not in container:
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        container["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})


def validate_deployment(obj: JsonDict, old: JsonDict | None = None) -> list[tuple[str, str, str]]:
    """Field errors (field, reason, message) of a defaulted Deployment; `old` for updates."""
    errors: list[tuple[str, str, str]] = []
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        errors.append(("metadata.name", "FieldValueRequired",
                       "Required value: name or generateName is required"))
    elif not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        errors.append(("metadata.name", "FieldValueInvalid",
                       f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of '
                       "lower case alphanumeric characters, '-' or '.'"))
    for key in ("labels", "annotations"):
        values = metadata.get(key) or {}
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            errors.append((f"metadata.{key}", "FieldValueInvalid",
                           "Invalid value: values must be strings"))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return errors + [("spec", "FieldValueRequired", "Required value")]
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        errors.append(("spec.replicas", "FieldValueInvalid",
                       f"Invalid value: {replicas!r}: must be greater than or equal to 0"))
    errors += _validate_selector(spec)
    errors += _validate_template(spec.get("template"))
    errors += _validate_strategy(spec)
    for field in ("minReadySeconds", "revisionHistoryLimit"):
        value = spec.get(field, 0)
        if not isinstance(value, int) or value < 0:
            errors.append((f"spec.{field}", "FieldValueInvalid",
                           f"Invalid value: {value!r}: must be greater than or equal to 0"))
    deadline, min_ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds", 0)
    if deadline is not None and (not isinstance(deadline, int) or deadline <= min_ready):
        errors.append(("spec.progressDeadlineSeconds", "FieldValueInvalid",
                       f"Invalid value: {deadline!r}: must be greater than minReadySeconds"))
    if old is not None and old["spec"].get("selector") != spec.get("selector"):
        errors.append(("spec.selector", "FieldValueInvalid",
                       f"Invalid value: {json.dumps(spec.get('selector'))}: field is immutable"))
    return errors


def _validate_selector(spec: JsonDict) -> list[tuple[str, str, str]]:
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        return [("spec.selector", "FieldValueRequired", "Required value")]
    template = spec.get("template")
    labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else {}
    try:
        selected = matches(selector_requirements(selector), labels)
    except (KeyError, TypeError, AttributeError):
        return [("spec.selector", "FieldValueInvalid", "Invalid value: malformed selector")]
    if not selected:
        return [("spec.template.metadata.labels", "FieldValueInvalid",
                 f"Invalid value: {json.dumps(labels)}: `selector` does not match template "
                 "`labels`")]
    return []


def _validate_template(template: Any) -> list[tuple[str, str, str]]:
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return [("spec.template.spec", "FieldValueRequired", "Required value")]
    containers = template["spec"].get("containers")
    if not isinstance(containers, list) or not containers:
        return [("spec.template.spec.containers", "FieldValueRequired", "Required value")]
    errors, seen = [], set()
    for index, container in enumerate(containers):
        field = f"spec.template.spec.containers[{index}]"
        if not isinstance(container, dict):
            errors.append((field, "FieldValueInvalid", "Invalid value: must be an object"))
            continue
        name = container.get("name")
        if not isinstance(name, str) or not name:
            errors.append((f"{field}.name", "FieldValueRequired", "Required value"))
        elif not _DNS_LABEL.match(name):
            errors.append((f"{field}.name", "FieldValueInvalid",
                           f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of '
                           "lower case alphanumeric characters or '-'"))
        elif name in seen:
            errors.append((f"{field}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"'))
        seen.add(name)
        image = container.get("image")
        if not isinstance(image, str) or not image.strip():
            errors.append((f"{field}.image", "FieldValueRequired", "Required value"))
    return errors


def _validate_strategy(spec: JsonDict) -> list[tuple[str, str, str]]:
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type")
    if kind not in ("RollingUpdate", "Recreate"):
        return [("spec.strategy.type", "FieldValueNotSupported",
                 f'Unsupported value: "{kind}": supported values: "Recreate", "RollingUpdate"')]
    if kind == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            return [("spec.strategy.rollingUpdate", "FieldValueForbidden",
                     "Forbidden: may not be specified when strategy `type` is 'Recreate'")]
        return []
    rolling = strategy.get("rollingUpdate") or {}
    values = (rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%"))
    for field, value in zip(("maxSurge", "maxUnavailable"), values, strict=True):
        try:
            resolved = int_or_percent(value, 100, round_up=True)
        except ValueError as error:
            resolved, problem = -1, f"Invalid value: {error}"
        else:
            problem = f"Invalid value: {value!r}: must be greater than or equal to 0"
            if field == "maxUnavailable" and resolved > 100 and isinstance(value, str):
                resolved, problem = -1, f"Invalid value: {value!r}: must not be greater than 100%"
        if resolved < 0:
            return [(f"spec.strategy.rollingUpdate.{field}", "FieldValueInvalid", problem)]
    if all(value in (0, "0%") for value in values):
        return [("spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid",
                 "Invalid value: 0: may not be 0 when `maxSurge` is 0")]
    return []
