"""Review: the user's decisions about a run's people (names, merges, splits, not-a-face, hidden, covers), kept in
OUT and applied by every re-clustering (:mod:`.decisions`)."""

from .decisions import (
    DECISIONS_NAME,
    NOT_A_FACE,
    Applied,
    DecisionError,
    Decisions,
    apply_decisions,
    face_key,
    match_faces,
    table_keys,
)

__all__ = ["DECISIONS_NAME", "NOT_A_FACE", "Applied", "DecisionError", "Decisions", "apply_decisions", "face_key",
           "match_faces", "table_keys"]
