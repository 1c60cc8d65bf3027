"""Provenance: what every run did, in SQLite or PostgreSQL, under Alembic migrations."""

from dsassist.store.provenance import MirroredStore, ProvenanceStore

__all__ = ["MirroredStore", "ProvenanceStore"]
