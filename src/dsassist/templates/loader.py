"""Finding the templates for a run: the built-in library plus a user's own file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from dsassist.errors import DSAssistError
from dsassist.templates.base import Template
from dsassist.templates.tabular.library import TEMPLATES


def load_templates(extra: Path | None = None) -> list[Template]:
    """Built-in templates, then those in `extra` (a Python file defining `TEMPLATES`)."""
    templates = list(TEMPLATES)
    if extra is None:
        return templates
    path = Path(extra)
    if not path.is_file():
        raise DSAssistError(f"templates file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"dsassist_user_templates_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:
        raise DSAssistError(f"cannot load templates from {path}: {type(exc).__name__}: {exc}") from exc
    user = getattr(module, "TEMPLATES", None)
    if not isinstance(user, list) or not all(isinstance(t, Template) for t in user):
        raise DSAssistError(f"{path} must define TEMPLATES, a list of dsassist.templates.Template")
    known = {t.id for t in templates}
    clash = [t.id for t in user if t.id in known]
    if clash:
        raise DSAssistError(f"{path} redefines built-in template ids: {', '.join(clash)}")
    return templates + user
