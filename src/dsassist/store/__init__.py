"""Provenance: every run, dataset, step, code version, execution, fix and lesson."""

from dsassist.store.provenance import ProvenanceStore

__all__ = ["ProvenanceStore"]
