"""Defaults and validation of the simple kinds: Secrets, ConfigMaps, Services, ServiceAccounts,
Pods and Jobs (Deployments have their own in objects.py).

`prepare(gr, obj, old)` fills in what the apiserver would (a Service's clusterIP, a Pod's
defaults, a Secret's `stringData` folded into `data`) and raises 422 Invalid with field causes
for what it would refuse. Only the checks a chart or a client is likely to trip are made.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from sandbox.kube.objects import (
    _DNS_LABEL,
    _DNS_SUBDOMAIN,
    CONFIGMAPS,
    JOBS,
    PODS,
    SECRETS,
    SERVICES,
    GroupResource,
    JsonDict,
    default_container,
)

Cause = tuple[str, str, str]
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def prepare(gr: GroupResource, obj: JsonDict, old: JsonDict | None) -> None:
    """Default `obj` in place and raise `gr.invalid` if the apiserver would refuse it."""
    metadata = obj["metadata"]
    name = metadata.get("name") or ""
    causes = _metadata_causes(gr, metadata)
    if gr == SECRETS:
        causes += _secret(obj, old)
    elif gr == CONFIGMAPS:
        causes += _string_map(obj, "data")
    elif gr == SERVICES:
        causes += _service(obj, old)
    elif gr == PODS:
        causes += _pod(obj, old)
    elif gr == JOBS:
        causes += _job(obj, old)
    if causes:
        raise gr.invalid(name, causes)


def _metadata_causes(gr: GroupResource, metadata: JsonDict) -> list[Cause]:
    name = metadata.get("name")
    causes: list[Cause] = []
    pattern = _DNS_1035 if gr == SERVICES else _DNS_SUBDOMAIN
    if not name:
        causes.append(("metadata.name", "FieldValueRequired",
                       "Required value: name or generateName is required"))
    elif not isinstance(name, str) or len(name) > 253 or not pattern.match(name):
        causes.append(("metadata.name", "FieldValueInvalid",
                       f'Invalid value: "{name}": a lowercase RFC 1123 name must consist of '
                       "lower case alphanumeric characters, '-' or '.'"))
    for key in ("labels", "annotations"):
        values = metadata.get(key) or {}
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            causes.append((f"metadata.{key}", "FieldValueInvalid",
                           "Invalid value: values must be strings"))
    return causes


def _string_map(obj: JsonDict, field: str) -> list[Cause]:
    values = obj.get(field)
    if values is None:
        return []
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        return [(field, "FieldValueInvalid", "Invalid value: values must be strings")]
    return []


def _secret(obj: JsonDict, old: JsonDict | None) -> list[Cause]:
    causes = _string_map(obj, "data") + _string_map(obj, "stringData")
    if causes:
        return causes
    data = dict(obj.get("data") or {})
    for key, value in data.items():
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            causes.append((f"data[{key}]", "FieldValueInvalid",
                           "Invalid value: illegal base64 data"))
    for key, value in (obj.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(value.encode()).decode()
    if data or "data" in obj:
        obj["data"] = data
    obj.setdefault("type", "Opaque")
    if old is not None and old.get("immutable") and (
        obj.get("data") != old.get("data") or not obj.get("immutable")
    ):
        causes.append(("data", "FieldValueForbidden",
                       "Forbidden: field is immutable when `immutable` is set"))
    return causes


def _service(obj: JsonDict, old: JsonDict | None) -> list[Cause]:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return [("spec", "FieldValueInvalid", "Invalid value: must be an object")]
    causes: list[Cause] = []
    spec.setdefault("type", "ClusterIP")
    if spec["type"] not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(("spec.type", "FieldValueNotSupported",
                       f'Unsupported value: "{spec["type"]}"'))
    ports = spec.get("ports") or []
    if not isinstance(ports, list):
        return causes + [("spec.ports", "FieldValueInvalid", "Invalid value: must be a list")]
    if not ports and spec["type"] != "ExternalName":
        causes.append(("spec.ports", "FieldValueRequired", "Required value"))
    for index, port in enumerate(ports):
        number = port.get("port") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            causes.append((f"spec.ports[{index}].port", "FieldValueInvalid",
                           f"Invalid value: {number!r}: must be between 1 and 65535, inclusive"))
            continue
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", number)
    if spec["type"] != "ExternalName":
        previous = (old or {}).get("spec", {}).get("clusterIP")
        key = f"{obj['metadata'].get('namespace')}/{obj['metadata'].get('name')}"
        digest = hashlib.sha256(key.encode()).digest()
        spec["clusterIP"] = previous or f"10.0.{digest[0]}.{digest[1] % 253 + 1}"
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    spec.setdefault("sessionAffinity", "None")
    ingress = [{"ip": "203.0.113.10", "ipMode": "VIP"}] if spec["type"] == "LoadBalancer" else []
    obj["status"] = {"loadBalancer": {"ingress": ingress} if ingress else {}}
    return causes


def _pod_spec(spec: Any, field: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [(field, "FieldValueRequired", "Required value")]
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [(f"{field}.containers", "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    for index, container in enumerate(containers):
        where = f"{field}.containers[{index}]"
        if not isinstance(container, dict):
            causes.append((where, "FieldValueInvalid", "Invalid value: must be an object"))
            continue
        name = container.get("name")
        if not isinstance(name, str) or not _DNS_LABEL.match(name):
            causes.append((f"{where}.name", "FieldValueRequired", "Required value"))
        if not isinstance(container.get("image"), str) or not container["image"].strip():
            causes.append((f"{where}.image", "FieldValueRequired", "Required value"))
        else:
            default_container(container)
    spec.setdefault("restartPolicy", "Always")
    if spec["restartPolicy"] not in ("Always", "OnFailure", "Never"):
        causes.append((f"{field}.restartPolicy", "FieldValueNotSupported",
                       f'Unsupported value: "{spec["restartPolicy"]}"'))
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    return causes


def _pod(obj: JsonDict, old: JsonDict | None) -> list[Cause]:
    causes = _pod_spec(obj.get("spec"), "spec")
    if old is None:
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif not causes and _without_images(obj["spec"], old["spec"]):
        causes.append(("spec", "FieldValueForbidden",
                       "Forbidden: pod updates may not change fields other than "
                       "`spec.containers[*].image`"))
    return causes


def _without_images(new: JsonDict, old: JsonDict) -> bool:
    """Whether two pod specs differ elsewhere than in their containers' images."""
    def strip(spec: JsonDict) -> JsonDict:
        containers = [{k: v for k, v in c.items() if k != "image"}
                      for c in spec.get("containers", [])]
        return {**{k: v for k, v in spec.items() if k != "nodeName"}, "containers": containers}
    return strip(new) != strip(old)



JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
_JOB_IMMUTABLE = ("selector", "template", "completions", "parallelism", "completionMode")


def _job(obj: JsonDict, old: JsonDict | None) -> list[Cause]:
    """A batch/v1 Job: defaults as the apiserver sets them (backoffLimit 6, the selector and
    template labels naming the Job and its uid), one pod at a time (completions and
    parallelism 1: more is not modelled); the template is immutable."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "FieldValueRequired", "Required value")]
    metadata = obj["metadata"]
    causes: list[Cause] = []
    if old is None:
        template = spec.get("template")
        if not isinstance(template, dict):
            return [("spec.template", "FieldValueRequired", "Required value")]
        pod_spec = template.get("spec")
        restart = pod_spec.get("restartPolicy", "Always") if isinstance(pod_spec, dict) \
            else "Always"
        causes += _pod_spec(pod_spec, "spec.template.spec")
        if restart not in ("OnFailure", "Never"):
            causes.append(("spec.template.spec.restartPolicy", "FieldValueNotSupported",
                           f'Unsupported value: "{restart}": supported values: "OnFailure", '
                           '"Never"'))
        uid, name = metadata.get("uid", ""), metadata.get("name", "")
        template_metadata = template.setdefault("metadata", {})
        labels = template_metadata.get("labels") or {}
        template_metadata["labels"] = {
            **labels, **dict.fromkeys(JOB_UID_LABELS, uid), **dict.fromkeys(JOB_NAME_LABELS, name)}
        spec.setdefault("selector", {"matchLabels": {JOB_UID_LABELS[0]: uid}})
        for key, value in (("parallelism", 1), ("completions", 1), ("backoffLimit", 6),
                           ("completionMode", "NonIndexed"), ("suspend", False),
                           ("podReplacementPolicy", "TerminatingOrFailed")):
            spec.setdefault(key, value)
        obj["status"] = {}
    else:
        for key in _JOB_IMMUTABLE:
            if spec.get(key) != old["spec"].get(key):
                causes.append((f"spec.{key}", "FieldValueInvalid",
                               "Invalid value: field is immutable"))
        spec.setdefault("backoffLimit", old["spec"].get("backoffLimit"))
    for key, least in (("backoffLimit", 0), ("activeDeadlineSeconds", 1),
                       ("ttlSecondsAfterFinished", 0)):
        value = spec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < least):
            causes.append((f"spec.{key}", "FieldValueInvalid",
                           f"Invalid value: {value!r}: must be greater than or equal to"
                           f" {least}"))
    for key in ("completions", "parallelism"):
        if spec.get(key) != 1:
            causes.append((f"spec.{key}", "FieldValueNotSupported",
                           f"Unsupported value: {spec.get(key)!r}: the sandbox runs one pod"
                           " at a time"))
    return causes
