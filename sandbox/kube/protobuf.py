"""A small protobuf wire-format reader for the Secret bodies client-go sends as protobuf.

Kubernetes' protobuf encoding wraps a message in `k8s\\0` + `runtime.Unknown` (typeMeta,
raw bytes); Helm's Secrets storage driver creates and updates its release records that way.
Only the fields of `v1.Secret` and `ObjectMeta` a client sets are decoded (name, generateName,
namespace, resourceVersion, labels, annotations, data, stringData, type, immutable); the rest
is skipped. Anything malformed raises `ProtobufError`.
"""

from __future__ import annotations

import base64

from sandbox.kube.objects import JsonDict

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    """The body is not a well-formed Kubernetes protobuf message of the expected kind."""


Field = tuple[int, int, int | bytes]  # field number, wire type, value


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ProtobufError("truncated or oversized varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data: bytes) -> list[Field]:
    """The top-level fields of one message, in order (varints as ints, the rest as bytes)."""
    found: list[Field] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == 0:
            value, at = _varint(data, at)
            found.append((number, wire, value))
        elif wire == 2:
            length, at = _varint(data, at)
            if at + length > len(data):
                raise ProtobufError("truncated length-delimited field")
            found.append((number, wire, data[at:at + length]))
            at += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if at + size > len(data):
                raise ProtobufError("truncated fixed-size field")
            found.append((number, wire, data[at:at + size]))
            at += size
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return found


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string field")
    try:
        return value.decode()
    except UnicodeDecodeError as error:
        raise ProtobufError("a string field is not UTF-8") from error


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a bytes field")
    return value


def _entry(value: int | bytes) -> tuple[str, bytes]:
    key, item = "", b""
    for number, _, part in fields(_bytes(value)):
        if number == 1:
            key = _text(part)
        elif number == 2:
            item = _bytes(part)
    return key, item


def unwrap(body: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw message) from a `k8s\\0` envelope."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    api_version = kind = ""
    raw = b""
    for number, _, value in fields(body[len(MAGIC):]):
        if number == 1:
            for inner, _, part in fields(_bytes(value)):
                if inner == 1:
                    api_version = _text(part)
                elif inner == 2:
                    kind = _text(part)
        elif number == 2:
            raw = _bytes(value)
        elif number == 3 and _bytes(value):
            raise ProtobufError("content encodings are not supported")
    return api_version, kind, raw


def _object_meta(data: bytes) -> JsonDict:
    metadata: JsonDict = {}
    names = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for number, _, value in fields(data):
        if number in names:
            text = _text(value)
            if text:
                metadata[names[number]] = text
        elif number in (11, 12):
            key, item = _entry(value)
            target = metadata.setdefault("labels" if number == 11 else "annotations", {})
            target[key] = item.decode(errors="replace")
        elif number == 14:
            metadata.setdefault("finalizers", []).append(_text(value))
    return metadata


def decode_secret(body: bytes) -> JsonDict:
    """A protobuf-encoded v1 Secret as the JSON object a client would have sent."""
    api_version, kind, raw = unwrap(body)
    if (api_version, kind) not in (("v1", "Secret"), ("", "")):
        raise ProtobufError(f"expected a v1 Secret, got {api_version} {kind}")
    secret: JsonDict = {"apiVersion": "v1", "kind": "Secret", "metadata": {}}
    for number, wire, value in fields(raw):
        if number == 1:
            secret["metadata"] = _object_meta(_bytes(value))
        elif number == 2:
            key, item = _entry(value)
            secret.setdefault("data", {})[key] = base64.b64encode(item).decode()
        elif number == 3:
            secret["type"] = _text(value)
        elif number == 4:
            key, item = _entry(value)
            secret.setdefault("stringData", {})[key] = item.decode(errors="replace")
        elif number == 5 and wire == 0:
            secret["immutable"] = bool(value)
    return secret


# --- encoding (tests use it to send what client-go sends) -------------------------------------

def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _delimited(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _encode_varint(len(payload)) + payload


def _map(number: int, values: dict[str, bytes]) -> bytes:
    return b"".join(
        _delimited(number, _delimited(1, key.encode()) + _delimited(2, value))
        for key, value in sorted(values.items())
    )


def encode_secret(secret: JsonDict) -> bytes:
    """A JSON Secret in client-go's protobuf encoding (name, namespace, labels, data, type)."""
    metadata = secret.get("metadata", {})
    meta = b"".join(
        _delimited(number, metadata[name].encode())
        for number, name in ((1, "name"), (3, "namespace"), (6, "resourceVersion"))
        if metadata.get(name)
    )
    meta += _map(11, {k: v.encode() for k, v in (metadata.get("labels") or {}).items()})
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    raw = _delimited(1, meta) + _map(2, data)
    if secret.get("type"):
        raw += _delimited(3, secret["type"].encode())
    type_meta = _delimited(1, b"v1") + _delimited(2, b"Secret")
    return MAGIC + _delimited(1, type_meta) + _delimited(2, raw)
