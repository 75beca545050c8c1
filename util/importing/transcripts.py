"""Transcript cleaning for importers: normalise, filter by alphabet, CTC frame needs.

Pure functions; util/importing/importers.py applies them to every sample.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Optional, Tuple

from ctcdecode import Alphabet
from util.samples import (
    EMPTY_TRANSCRIPT,
    OUT_OF_ALPHABET,
    ctc_required_frames,
)

# -- transcripts ----------------------------------------------------------------------


def normalize_text(text: str, alphabet: Optional[Alphabet] = None) -> str:
    """NFKD, accents stripped, lowercase, out-of-alphabet dropped, spaces collapsed.

    A lowercased character the alphabet already covers is kept whole, so letters whose
    accent is part of the letter (Russian "й", Spanish "ñ" in a Spanish alphabet)
    survive; only characters the alphabet lacks are decomposed to their base letters.
    """
    out = []
    for char in unicodedata.normalize("NFC", text):
        lower = char.lower()
        if alphabet is not None and alphabet.can_encode(lower):
            out.append(lower)
            continue
        for part in unicodedata.normalize("NFKD", lower):
            if unicodedata.combining(part):
                continue
            if part.isspace():
                out.append(" ")
            elif alphabet is None or alphabet.can_encode(part):
                out.append(part)
    return collapse_spaces("".join(out))


def collapse_spaces(text: str) -> str:
    """Runs of whitespace -> one space, no leading or trailing space."""
    return re.sub(r"\s+", " ", text).strip()


def clean_transcript(
    text: str, alphabet: Optional[Alphabet], normalize: bool, filter_alphabet: bool
) -> Tuple[str, Optional[str]]:
    """(clean text, skip reason or None) under --normalize / --filter_alphabet."""
    text = normalize_text(text, alphabet) if normalize else collapse_spaces(text)
    if not text:
        return text, EMPTY_TRANSCRIPT
    if alphabet is not None and filter_alphabet and not alphabet.can_encode(text):
        return text, OUT_OF_ALPHABET
    return text, None


def strip_punctuation(text: str) -> str:
    """Lowercase; keep letters, digits, spaces, apostrophes (DeepSpeech's English)."""
    return collapse_spaces(re.sub(r"[^\w\s']", "", text.lower()))


def required_frames(text: str, alphabet: Optional[Alphabet]) -> int:
    """Fewest feature frames CTC needs for ``text`` (characters when not encodable)."""
    if alphabet is not None and alphabet.can_encode(text):
        return ctc_required_frames(alphabet.encode(text))
    return ctc_required_frames(list(text))
