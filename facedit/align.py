"""Moved to ``facedit.speech.align``; this name stays importable."""

from .speech.align import (
    DEFAULT_CTC_REPO,
    AlignmentError,
    CTCAligner,
    ctc_viterbi,
    load_aligner,
    words_from_path,
)

__all__ = ["DEFAULT_CTC_REPO", "AlignmentError", "CTCAligner", "ctc_viterbi", "load_aligner", "words_from_path"]
