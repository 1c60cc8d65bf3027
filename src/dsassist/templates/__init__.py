"""Experiment templates per domain. Tabular classification and regression come first."""

from dsassist.templates.base import Template
from dsassist.templates.loader import load_templates

__all__ = ["Template", "load_templates"]
