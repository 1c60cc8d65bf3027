"""Turning a model's reply into something usable, or a precise reason to ask again.

Nothing a model writes is executed unless it parsed as one Python code block that uses only
names the kernel holds or the cell itself defines.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)


class ParseError(ValueError):
    """The reply cannot be used; the message tells the model what to change."""


def code_cell(text: str, known: set[str]) -> str:
    """The one Python code block in `text`, checked to parse and to use only known names."""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("python", "py", "")]
    if not blocks:
        raise ParseError("the reply has no ```python code block")
    if len(blocks) > 1:
        raise ParseError(f"the reply has {len(blocks)} code blocks: send exactly one cell")
    code = blocks[0].strip("\n")
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise ParseError(f"the code does not parse: {exc.msg} (line {exc.lineno})") from None
    unknown = sorted(undefined_names(tree) - known)
    if unknown:
        raise ParseError(
            f"the code uses names that the kernel does not hold: {', '.join(unknown)}; "
            f"use only these variables: {', '.join(sorted(known)) or '(none)'}"
        )
    return code + "\n"


def json_reply(text: str, schema: type[T]) -> T:
    """The JSON object in `text` (bare or in a ```json block), validated against `schema`."""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("json", "")]
    start, end = text.find("{"), text.rfind("}")
    if not blocks and start < 0:
        raise ParseError("the reply has no JSON object")
    candidate = blocks[0] if blocks else text[start : end + 1] if end > start else text[start:]
    try:
        return schema.model_validate(json.loads(candidate))
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "the object"
        raise ParseError(f"the JSON does not match the schema: {where}: {err['msg']}") from None


def plain_text(text: str, limit: int = 4000) -> str:
    """A prose reply: not empty, not a code dump, not endless."""
    text = text.strip()
    if not text:
        raise ParseError("the reply is empty")
    if text.startswith("```"):
        raise ParseError("reply in plain text, not in a code block")
    if len(text) > limit:
        raise ParseError(f"the reply is {len(text)} characters long: keep it under {limit}")
    return text


IPYTHON_NAMES = frozenset({"display", "get_ipython", "In", "Out"})  # a kernel defines these


def undefined_names(tree: ast.AST) -> set[str]:
    """Names the code reads without defining them itself (by assignment, import, def or loop)."""
    defined = set(dir(builtins)) | IPYTHON_NAMES
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (defined.add if isinstance(node.ctx, ast.Store | ast.Del) else read.add)(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
    return read - defined
