"""What a YAML scalar means to Kubernetes: go-yaml v2's resolution, as sigs.k8s.io/yaml reads it.

The API server and kubectl turn YAML into JSON with sigs.k8s.io/yaml, which decodes with
its go-yaml v2 fork (YAML 1.1 words, Go's own number syntax) and then writes JSON. This
module reproduces that for one scalar: its Go kind and value, the JSON value the API
server reads back, and the text a non-string key becomes. `testenv/yamljson` holds it to
the real library in the tests; comments here say where Go differs from PyYAML.
"""

from __future__ import annotations

import math
import re
import struct
from decimal import Decimal
from typing import Any, Final

STR: Final = "str"
INT: Final = "int"
FLOAT: Final = "float"
BOOL: Final = "bool"
NULL: Final = "null"
MERGE: Final = "merge"

Scalar = tuple[str, Any]  # (kind, Go value): kind is one of the names above

# YAML 1.1's words, exactly as go-yaml v2 lists them: `y`, `on` and `off` are booleans,
# `tRue` is text. PyYAML differs: it knows no `y`/`n`, and reads `=` as a special tag.
_WORDS: Final[dict[str, Scalar]] = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE"), (BOOL, True)),
    **dict.fromkeys(("on", "On", "ON"), (BOOL, True)),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE"), (BOOL, False)),
    **dict.fromkeys(("off", "Off", "OFF"), (BOOL, False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), (NULL, None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), (FLOAT, math.nan)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), (FLOAT, math.inf)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), (FLOAT, -math.inf)),
    "<<": (MERGE, "<<"),
}

# strconv.ParseInt(s, 0, 64) after go-yaml strips every "_": a sign, then 0x/0b/0o or
# a leading 0 (octal), so `0755` and `0o755` are both 493 and `08` is no integer.
_GO_INT: Final = re.compile(
    r"([+-]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)"
)
# go-yaml's own float pattern: `1e3` is a float, `1:30` (YAML 1.1 base 60) is text.
_GO_FLOAT: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# A scalar starting with "." goes to strconv.ParseFloat as written, which takes a "_"
# only between two digits.
_DOT_FLOAT: Final = re.compile(r"\.[0-9]+(_[0-9]+)*([eE][-+]?[0-9]+(_[0-9]+)*)?")
_BINARY_TAIL: Final = re.compile(r"[+-]?[01]+")  # ParseInt(s[2:], 2): a sign is allowed
_BINARY_DIGITS: Final = re.compile(r"[01]+")

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_UINT64_MAX: Final = 2**64 - 1
_JSON_PLAIN_FLOAT_BELOW: Final = 1e21  # encoding/json writes larger floats with an exponent


def resolve_plain(text: str) -> Scalar:
    """The kind and Go value of an untagged plain scalar (go-yaml v2's `resolve("", text)`)."""
    word = _WORDS.get(text)
    if word is not None:
        return word
    first = text[0]
    if first == ".":
        return _dot_float(text)
    if first in "+-0123456789":
        return _number(text)
    return (STR, text)  # timestamps too: Kubernetes sees the text as written


def _dot_float(text: str) -> Scalar:
    if _DOT_FLOAT.fullmatch(text):
        value = float(text.replace("_", ""))
        if not math.isinf(value):  # Go's ParseFloat fails on overflow: the text stays text
            return (FLOAT, value)
    return (STR, text)


def _number(text: str) -> Scalar:
    plain = text.replace("_", "")
    whole = _go_integer(plain)
    if whole is not None:
        return (INT, whole)
    if _GO_FLOAT.fullmatch(plain):
        value = float(plain)
        if not math.isinf(value):
            return (FLOAT, value)
    binary = _go_binary(plain)
    return (INT, binary) if binary is not None else (STR, text)


def _go_integer(plain: str) -> int | None:
    """ParseInt(plain, 0, 64), else ParseUint(plain, 0, 64) (no sign), else None."""
    match = _GO_INT.fullmatch(plain)
    if match is None:
        return None
    sign, digits = match.groups()
    if len(digits) > 1 and digits[0] == "0" and digits[1] in "01234567":
        value = int(digits[1:], 8)
    else:
        value = int(digits, 0)
    value = -value if sign == "-" else value
    if _INT64_MIN <= value <= _INT64_MAX or (not sign and value <= _UINT64_MAX):
        return value
    return None


def _go_binary(plain: str) -> int | None:
    """go-yaml's second try at `0b...` and `-0b...`, after ParseInt failed."""
    if plain.startswith("0b") and _BINARY_TAIL.fullmatch(plain[2:]):
        value = int(plain[2:], 2)  # ParseInt(s, 2, 64), else ParseUint (which has no sign)
        unsigned = plain[2] not in "+-" and value <= _UINT64_MAX
        return value if _INT64_MIN <= value <= _INT64_MAX or unsigned else None
    if plain.startswith("-0b") and _BINARY_DIGITS.fullmatch(plain[3:]):
        value = -int(plain[3:], 2)
        return value if value >= _INT64_MIN else None
    return None


def resolve_tagged(tag: str, text: str) -> Scalar | None:
    """A scalar with an explicit standard tag (`!!int 12`), or None when Go refuses it.

    As in go-yaml, the tag must agree with what the text resolves to, except that a
    `!!float` takes an integer; `!!timestamp` text stays text.
    """
    if tag == STR:
        return (STR, text)
    if tag == "timestamp":
        return (STR, text) if is_go_timestamp(text) else None
    kind, value = resolve_plain(text)
    if kind == tag:
        return (kind, value)
    if tag == FLOAT and kind == INT:
        return (FLOAT, float(value))
    return None


_DATE: Final = r"(\d{4})-(\d{1,2})-(\d{1,2})"
_CLOCK: Final = r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?"
_GO_TIMESTAMP: Final = re.compile(rf"{_DATE}(?:[Tt]{_CLOCK}(?:Z|[+-]\d{{2}}:\d{{2}})| {_CLOCK})?")
_DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_go_timestamp(text: str) -> bool:
    """Whether go-yaml's time.Parse layouts (RFC 3339, space-separated, date) accept it."""
    match = _GO_TIMESTAMP.fullmatch(text)
    if match is None:
        return False
    year, month, day, *clock = (int(part) if part else 0 for part in match.groups())
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= month <= 12 or not 1 <= day <= _DAYS_IN_MONTH[month - 1]:
        return False
    if month == 2 and day == 29 and not leap:
        return False
    hour, minute, second = clock[0] or clock[3], clock[1] or clock[4], clock[2] or clock[5]
    return hour < 24 and minute < 60 and second < 60


def json_value(kind: str, value: Any) -> Any:
    """The value as the API server reads it back from sigs.k8s.io/yaml's JSON.

    encoding/json writes a whole float below 1e21 without a fraction (`1e3` -> 1000,
    `3.0` -> 3), and the API server reads such a number as an integer. NaN and the
    infinities cannot be written at all: the caller refuses them (see `is_json_number`).
    """
    if kind == FLOAT and value.is_integer() and abs(value) < _JSON_PLAIN_FLOAT_BELOW:
        return int(value) if abs(value) < 2**53 else int(Decimal(repr(value)))
    if kind == MERGE:
        return "<<"  # as a value, `<<` is the text
    return value


def is_json_number(kind: str, value: Any) -> bool:
    return kind != FLOAT or math.isfinite(value)


def key_text(kind: str, value: Any) -> str | None:
    """The JSON key sigs.k8s.io/yaml makes of a map key, or None where it gives an error.

    Booleans become "true"/"false", integers their decimal digits (`0x10` -> "16"),
    floats Go's shortest float32 text (`1e3` -> "1000", `0.123456789` -> "0.12345679").
    A null key, or an integer between 2**63 and 2**64 (a Go uint64), is an error.
    """
    if kind in (STR, MERGE):
        return str(value)
    if kind == BOOL:
        return "true" if value else "false"
    if kind == INT:
        return str(value) if value <= _INT64_MAX else None
    if kind == FLOAT:
        return _float32_text(value)
    return None


def _float32_text(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32), with go-yaml's names for the specials."""
    if math.isnan(value):
        return ".nan"
    single = _to_float32(value)
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    if single == 0:
        return "-0" if math.copysign(1, single) < 0 else "0"
    digits, exponent = _shortest_float32_digits(single)
    sign = "-" if single < 0 else ""
    if exponent < -4 or exponent >= 6:  # %g's rule, with precision 6 for "shortest"
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    point = exponent + 1
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _to_float32(value: float) -> float:
    try:
        single: float = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:  # Go's float32() conversion gives an infinity
        return math.copysign(math.inf, value)
    return single


def _shortest_float32_digits(single: float) -> tuple[str, int]:
    """The fewest significant digits that read back as the same float32, and the exponent."""
    for precision in range(1, 10):
        text = f"{abs(single):.{precision - 1}e}"
        if _to_float32(float(text)) == abs(single):
            break
    mantissa, exponent = text.split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    return digits, int(exponent)
