"""A small SOQL subset: what incremental extractors send.

    SELECT f1, f2 | COUNT() FROM Object
    [WHERE cond {AND|OR cond} (parentheses, NOT)]  cond: field op literal | field [NOT] IN (...) | field LIKE '...'
    [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]

Literals: 'string', numbers, true/false/null, date-times (2026-01-01T00:00:00Z, ...000+0000) and dates.
Field names are resolved by the caller (case-insensitively, as Salesforce does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import cmp_to_key

from .timeutil import parse_datetime, try_parse_datetime


class SoqlError(Exception):
    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[,()])
""", re.VERBOSE)

_KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
             "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "COUNT"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\",
            "_": "\\_", "%": "\\%"}


@dataclass(frozen=True)
class Literal:
    kind: str          # string | number | boolean | null | datetime | date
    value: object
    text: str


@dataclass
class Query:
    fields: list[str]
    object: str
    count: bool = False
    where: tuple | None = None
    order: list[tuple[str, bool, bool]] = field(default_factory=list)   # (field, descending, nulls_first)
    limit: int | None = None
    offset: int = 0

    def referenced_fields(self) -> list[str]:
        names = list(self.fields)
        names.extend(f for f, _, _ in self.conditions())
        names.extend(f for f, _, _ in self.order)
        return names

    def conditions(self):
        """(field, operator, literal) for every comparison in WHERE."""
        def walk(node):
            if node is None:
                return
            kind = node[0]
            if kind in ("and", "or"):
                for child in node[1]:
                    yield from walk(child)
            elif kind == "not":
                yield from walk(node[1])
            elif kind == "in":
                for literal in node[2]:
                    yield node[1], "=", literal
            else:
                yield node[1], node[2], node[3]
        yield from walk(self.where)


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[position:position + 20]}'")
        position = match.end()
        if match.lastgroup != "ws":
            tokens.append((match.lastgroup, match.group()))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.position = 0

    def peek(self, offset: int = 0):
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else ("eof", "")

    def next(self):
        token = self.peek()
        self.position += 1
        return token

    def is_keyword(self, word: str, offset: int = 0) -> bool:
        kind, value = self.peek(offset)
        return kind == "ident" and value.upper() == word

    def expect_keyword(self, word: str) -> None:
        if not self.is_keyword(word):
            self.fail()
        self.position += 1

    def expect(self, kind: str, value: str | None = None) -> str:
        token_kind, token_value = self.next()
        if token_kind != kind or (value is not None and token_value != value):
            self.position -= 1
            self.fail()
        return token_value

    def fail(self):
        kind, value = self.peek()
        raise SoqlError("MALFORMED_QUERY",
                        "unexpected end of query" if kind == "eof" else f"unexpected token: '{value}'")

    def identifier(self) -> str:
        kind, value = self.peek()
        if kind != "ident" or value.upper() in _KEYWORDS:
            self.fail()
        self.position += 1
        return value

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        fields, count = [], False
        if self.is_keyword("COUNT") and self.peek(1) == ("punct", "("):
            self.position += 1
            self.expect("punct", "(")
            self.expect("punct", ")")
            count = True
        else:
            fields.append(self.identifier())
            while self.peek() == ("punct", ","):
                self.position += 1
                fields.append(self.identifier())
        self.expect_keyword("FROM")
        query = Query(fields=fields, object=self.identifier(), count=count)
        if self.is_keyword("WHERE"):
            self.position += 1
            query.where = self.disjunction()
        if self.is_keyword("ORDER"):
            self.position += 1
            self.expect_keyword("BY")
            query.order.append(self.order_item())
            while self.peek() == ("punct", ","):
                self.position += 1
                query.order.append(self.order_item())
        if self.is_keyword("LIMIT"):
            self.position += 1
            query.limit = int(self.expect("number"))
        if self.is_keyword("OFFSET"):
            self.position += 1
            query.offset = int(self.expect("number"))
        if self.peek()[0] != "eof":
            self.fail()
        return query

    def order_item(self):
        name = self.identifier()
        descending = False
        if self.is_keyword("ASC") or self.is_keyword("DESC"):
            descending = self.next()[1].upper() == "DESC"
        nulls_first = not descending       # SOQL's default: nulls first ascending, last descending
        if self.is_keyword("NULLS"):
            self.position += 1
            if self.is_keyword("FIRST") or self.is_keyword("LAST"):
                nulls_first = self.next()[1].upper() == "FIRST"
            else:
                self.fail()
        return name, descending, nulls_first

    def disjunction(self):
        items = [self.conjunction()]
        while self.is_keyword("OR"):
            self.position += 1
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else ("or", items)

    def conjunction(self):
        items = [self.factor()]
        while self.is_keyword("AND"):
            self.position += 1
            items.append(self.factor())
        return items[0] if len(items) == 1 else ("and", items)

    def factor(self):
        if self.is_keyword("NOT"):
            self.position += 1
            return ("not", self.factor())
        if self.peek() == ("punct", "("):
            self.position += 1
            node = self.disjunction()
            self.expect("punct", ")")
            return node
        name = self.identifier()
        if self.is_keyword("IN") or (self.is_keyword("NOT") and self.is_keyword("IN", 1)):
            negate = self.is_keyword("NOT")
            self.position += 2 if negate else 1
            self.expect("punct", "(")
            values = [self.literal()]
            while self.peek() == ("punct", ","):
                self.position += 1
                values.append(self.literal())
            self.expect("punct", ")")
            node = ("in", name, values)
            return ("not", node) if negate else node
        if self.is_keyword("LIKE"):
            self.position += 1
            literal = self.literal()
            if literal.kind != "string":
                self.fail()
            return ("like", name, "LIKE", literal)
        kind, op = self.next()
        if kind != "op":
            self.position -= 1
            self.fail()
        return ("cmp", name, "!=" if op == "<>" else op, self.literal())

    def literal(self) -> Literal:
        kind, text = self.next()
        if kind == "string":
            return Literal("string", _unescape(text[1:-1]), text)
        if kind == "number":
            return Literal("number", float(text) if "." in text else int(text), text)
        if kind == "datetime":
            return Literal("datetime", parse_datetime(text), text)
        if kind == "date":
            return Literal("date", date.fromisoformat(text), text)
        if kind == "ident" and text.upper() in ("TRUE", "FALSE"):
            return Literal("boolean", text.upper() == "TRUE", text)
        if kind == "ident" and text.upper() == "NULL":
            return Literal("null", None, text)
        self.position -= 1
        self.fail()


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def parse(text: str) -> Query:
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "empty query")
    return _Parser(text).query()


# ------------------------------------------------------------------------------------ evaluation

def matches(node, record: dict, resolve) -> bool:
    """Whether a record satisfies a WHERE tree; resolve maps a written field name to the record key."""
    if node is None:
        return True
    kind = node[0]
    if kind == "and":
        return all(matches(child, record, resolve) for child in node[1])
    if kind == "or":
        return any(matches(child, record, resolve) for child in node[1])
    if kind == "not":
        return not matches(node[1], record, resolve)
    value = record.get(resolve(node[1]))
    if kind == "in":
        return any(_compare(value, "=", literal) for literal in node[2])
    if kind == "like":
        if value is None:
            return False
        pattern = _like_regex(node[3].value)
        return re.fullmatch(pattern, str(value), re.IGNORECASE | re.DOTALL) is not None
    return _compare(value, node[2], node[3])


def _like_regex(pattern: str) -> str:
    out, escaped = [], False
    for char in pattern:
        if escaped:
            out.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _compare(value, op: str, literal: Literal) -> bool:
    if literal.kind == "null":
        return {"=": value is None, "!=": value is not None}.get(op, False)
    if value is None:
        return op == "!="            # SOQL keeps nulls in a != comparison
    left, right = _comparable(value, literal)
    if left is None:
        return op == "!="
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if literal.kind == "boolean":
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _comparable(value, literal: Literal):
    if literal.kind == "datetime":
        return try_parse_datetime(value), literal.value
    if literal.kind == "date":
        try:
            return date.fromisoformat(str(value)[:10]), literal.value
        except ValueError:
            return None, None
    if literal.kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, None
        return float(value), float(literal.value)
    if literal.kind == "boolean":
        return (value if isinstance(value, bool) else None), literal.value
    if isinstance(value, bool):
        value = "true" if value else "false"
    return str(value).casefold(), literal.value.casefold()    # SOQL string comparison ignores case


def sort_records(records: list[dict], order: list[tuple[str, bool, bool]], resolve) -> list[dict]:
    if not order:
        return list(records)

    def compare(a: dict, b: dict) -> int:
        for name, descending, nulls_first in order:
            key = resolve(name)
            left, right = _sort_key(a.get(key)), _sort_key(b.get(key))
            if left is None and right is None:
                continue
            if left is None or right is None:
                return (-1 if nulls_first else 1) * (1 if left is None else -1)
            if left != right:
                result = -1 if left < right else 1
                return -result if descending else result
        return 0

    return sorted(records, key=cmp_to_key(compare))


def _sort_key(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (1, float(value))
    moment = try_parse_datetime(value)
    if moment is not None:
        return (2, moment.timestamp())
    return (3, str(value).casefold())
