"""Message classes from a ``.proto`` file at run time, without ``protoc``.

:func:`parse_proto` reads the proto2 subset that ``caffe.proto`` uses into a
``FileDescriptorProto``: ``syntax``, ``package``, (nested) ``message`` and ``enum``
declarations, ``optional`` / ``required`` / ``repeated`` fields of scalar, enum or message
type, and the field options ``default`` and ``packed``; comments are ``//`` and ``/* */``.
Anything else (``import``, ``oneof``, ``map``, ``service``, ``extend``, other options) is
rejected with ``ValueError`` naming the line.  :func:`message_classes` builds the classes
in a private descriptor pool, so that they never clash with another copy of the same
schema loaded by other software.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["parse_proto", "message_classes"]

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "double": _F.TYPE_DOUBLE, "float": _F.TYPE_FLOAT, "int64": _F.TYPE_INT64,
    "uint64": _F.TYPE_UINT64, "int32": _F.TYPE_INT32, "fixed64": _F.TYPE_FIXED64,
    "fixed32": _F.TYPE_FIXED32, "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES, "uint32": _F.TYPE_UINT32, "sfixed32": _F.TYPE_SFIXED32,
    "sfixed64": _F.TYPE_SFIXED64, "sint32": _F.TYPE_SINT32, "sint64": _F.TYPE_SINT64,
}
_LABELS = {"optional": _F.LABEL_OPTIONAL, "required": _F.LABEL_REQUIRED,
           "repeated": _F.LABEL_REPEATED}
_TOKEN = re.compile(r"""
    (?P<space>\s+) | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<symbol>[{}\[\]=;,<>()])
""", re.VERBOSE | re.DOTALL)


def _tokens(text: str) -> List[Tuple[str, str, int]]:
    out, pos, line = [], 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"proto line {line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind not in ("space", "comment"):
            out.append((kind, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0
        # full name ('.caffe.X.Y') -> 'message' | 'enum'; fields whose type is to resolve
        self.kinds: Dict[str, str] = {}
        self.pending: List[Tuple[_F, str, str, int]] = []

    def peek(self) -> Optional[str]:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def line(self) -> int:
        return self.toks[min(self.i, len(self.toks) - 1)][2] if self.toks else 1

    def take(self, expected: Optional[str] = None, kind: Optional[str] = None) -> str:
        if self.i >= len(self.toks):
            raise ValueError(f"proto: unexpected end of file, expected {expected or kind}")
        k, v, line = self.toks[self.i]
        if (expected is not None and v != expected) or (kind is not None and k != kind):
            raise ValueError(f"proto line {line}: expected {expected or kind}, got {v!r}")
        self.i += 1
        return v

    def file(self) -> descriptor_pb2.FileDescriptorProto:
        fdp = descriptor_pb2.FileDescriptorProto(name="caffe.proto")
        scope = ""
        while self.peek() is not None:
            word = self.take(kind="ident")
            if word == "syntax":
                self.take("=")
                syntax = self.take(kind="string")[1:-1]
                if syntax != "proto2":
                    raise ValueError(f"proto line {self.line()}: only proto2 is supported, "
                                     f"got syntax {syntax!r}")
                self.take(";")
            elif word == "package":
                fdp.package = self.take(kind="ident")
                scope = "." + fdp.package
                self.take(";")
            elif word == "message":
                self.message(fdp.message_type.add(), scope)
            elif word == "enum":
                self.enum(fdp.enum_type.add(), scope)
            else:
                raise ValueError(f"proto line {self.line()}: unsupported statement {word!r}")
        self.resolve()
        return fdp

    def message(self, msg: descriptor_pb2.DescriptorProto, scope: str) -> None:
        msg.name = self.take(kind="ident")
        full = f"{scope}.{msg.name}"
        self.kinds[full] = "message"
        self.take("{")
        while self.peek() != "}":
            word = self.take(kind="ident")
            if word == "message":
                self.message(msg.nested_type.add(), full)
            elif word == "enum":
                self.enum(msg.enum_type.add(), full)
            elif word in _LABELS:
                self.field(msg.field.add(), _LABELS[word], full)
            else:
                raise ValueError(f"proto line {self.line()}: unsupported declaration {word!r} "
                                 f"in message {msg.name}")
        self.take("}")

    def enum(self, enum: descriptor_pb2.EnumDescriptorProto, scope: str) -> None:
        enum.name = self.take(kind="ident")
        self.kinds[f"{scope}.{enum.name}"] = "enum"
        self.take("{")
        while self.peek() != "}":
            value = enum.value.add(name=self.take(kind="ident"))
            self.take("=")
            value.number = int(self.take(kind="number"))
            self.take(";")
        self.take("}")

    def field(self, field: _F, label: int, scope: str) -> None:
        field.label = label
        type_name = self.take(kind="ident")
        field.name = self.take(kind="ident")
        self.take("=")
        field.number = int(self.take(kind="number"))
        default = None
        if self.peek() == "[":
            self.take("[")
            while True:
                option = self.take(kind="ident")
                self.take("=")
                kind, value, _ = self.toks[self.i]
                self.i += 1
                if option == "default":
                    default = (kind, value)
                elif option == "packed":
                    field.options.packed = value == "true"
                else:
                    raise ValueError(f"proto line {self.line()}: unsupported option {option!r}")
                if self.peek() != ",":
                    break
                self.take(",")
            self.take("]")
        self.take(";")
        if type_name in _SCALARS:
            field.type = _SCALARS[type_name]
        else:
            self.pending.append((field, type_name, scope, self.line()))
        if default is not None:
            field.default_value = _default_text(
                *default, field.type if field.HasField("type") else None)

    def resolve(self) -> None:
        for field, name, scope, line in self.pending:
            full = self.lookup(name, scope)
            if full is None:
                raise ValueError(f"proto line {line}: unknown type {name!r}")
            field.type_name = full
            field.type = _F.TYPE_MESSAGE if self.kinds[full] == "message" else _F.TYPE_ENUM

    def lookup(self, name: str, scope: str) -> Optional[str]:
        """C++-like scoping: the innermost enclosing scope that declares ``name`` wins."""
        parts = scope.split(".")
        while parts:
            candidate = ".".join(parts + [name])
            if candidate in self.kinds:
                return candidate
            parts.pop()
        return None


def _default_text(kind: str, value: str, field_type: Optional[int]) -> str:
    """``default_value`` as protoc writes it (floats in their shortest form)."""
    if kind == "string":
        return value[1:-1].encode("latin-1").decode("unicode_escape")
    if field_type in (_F.TYPE_FLOAT, _F.TYPE_DOUBLE):
        text = repr(float(value))
        return text[:-2] if text.endswith(".0") else text
    return value


def parse_proto(text: str) -> descriptor_pb2.FileDescriptorProto:
    """The ``FileDescriptorProto`` of a ``.proto`` text (the subset in the module help)."""
    return _Parser(text).file()


def message_classes(text: str) -> Dict[str, type]:
    """Message classes of every top-level message of a ``.proto`` text, by name, built in a
    private descriptor pool."""
    fdp = parse_proto(text)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(fdp.SerializeToString())
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is None:  # protobuf < 4.22
        get_class = message_factory.MessageFactory(pool).GetPrototype
    prefix = f"{fdp.package}." if fdp.package else ""
    return {m.name: get_class(pool.FindMessageTypeByName(prefix + m.name))
            for m in fdp.message_type}
