"""Output alphabets: the map between transcript text and CTC label ids.

Both the trainer (``util/``) and the inference client import this module, so it must
stay free of TensorFlow. It reads DeepSpeech's ``alphabet.txt`` format exactly as
DeepSpeech's C++ ``Alphabet::init`` does:

* the file is UTF-8 and holds one symbol per line; ``\\n``, ``\\r\\n`` and ``\\r`` all
  end a line (DeepSpeech's ``getline_crossplatform``), and empty lines are skipped,
  so the trailing newline is optional;
* a line starting with ``#`` is a comment, and a line that is exactly ``\\#`` is the
  literal symbol ``#``;
* a line holding a single space is the space symbol;
* label ``i`` is the ``i``-th symbol line. We add one rule DeepSpeech lacks: a
  duplicated symbol raises :class:`AlphabetError` naming both lines, because the C++
  code silently let the later line win and the earlier label could never be produced.

Contract with the rest of the project (doc/ARCHITECTURE.rst, Contracts):

* ``labels``: ``List[int]`` (``[label_len]`` int32 once batched) with values in
  ``[0, size())``;
* the CTC blank is the **last** class, ``blank_index == size()``, and models emit
  ``n_classes == size() + 1`` logits, as DeepSpeech did.

:class:`UTF8Alphabet` is DeepSpeech's "bytes output mode": 255 labels for the UTF-8
bytes 1..255 (label = byte - 1), which covers every language without an alphabet file.
"""

from __future__ import annotations

import hashlib
import re
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from .fileio import atomic_write_text

COMMENT_PREFIX = "#"
ESCAPED_HASH = "\\#"
# First comment line of a serialized UTF8Alphabet; load_alphabet() dispatches on it.
UTF8_MARKER = "# ctcdecode-alphabet: utf8-bytes"
# DeepSpeech's data/alphabet.txt header and footer, so serialize() reproduces that file.
_HEADER = (
    "# Each line in this file represents the Unicode codepoint (UTF-8 encoded)\n"
    "# associated with a numeric label.\n"
    "# A line that starts with # is a comment. You can escape it with \\# if you wish\n"
    "# to use '#' as a label.\n"
)
_FOOTER = "# The last (non-comment) line needs to end with a newline.\n"
_UTF8_BODY = (
    f"{UTF8_MARKER}\n"
    "# UTF-8 bytes output mode (DeepSpeech --bytes_output_mode): 255 labels for the\n"
    "# bytes 1..255, label = byte - 1, blank = 255. This file lists no symbols.\n"
)
LINE_BREAK = re.compile(r"\r\n|\r|\n")
_MAX_TEXT_IN_ERROR = 200  # characters of a transcript quoted in an error message


class AlphabetError(ValueError):
    """A malformed alphabet, or text/labels that the alphabet cannot represent."""


class Alphabet:
    """Symbols read from a DeepSpeech ``alphabet.txt``; label ``i`` is symbol ``i``.

    Args:
        config_file: path of the UTF-8 alphabet file (format in the module docstring).

    Raises:
        AlphabetError: the file is missing, not UTF-8, defines no symbol, repeats a
            symbol, or describes the UTF-8 bytes alphabet (use :func:`load_alphabet`).
    """

    def __init__(self, config_file: str) -> None:
        lines = _read_lines(config_file)
        if UTF8_MARKER in lines:
            raise AlphabetError(
                f"{config_file} describes the UTF-8 bytes alphabet; load it with "
                "UTF8Alphabet(path) or load_alphabet(path)"
            )
        self._init_symbols(parse_lines(lines, config_file), config_file)

    @classmethod
    def from_symbols(cls, symbols: Sequence[str]) -> "Alphabet":
        """An alphabet whose label ``i`` is ``symbols[i]``.

        Raises:
            AlphabetError: a symbol is empty, repeated, holds a line break, or cannot
                be written to ``alphabet.txt`` (``"\\#"`` or ``"#..."`` longer than 1).
        """
        alphabet = cls.__new__(cls)
        alphabet._init_symbols(tuple(symbols), "<from_symbols>")
        return alphabet

    def _init_symbols(self, symbols: Tuple[str, ...], source: str) -> None:
        _check_symbols(symbols, source)
        self._source = source
        self._symbols = symbols
        self._str_to_label: Dict[str, int] = {s: i for i, s in enumerate(symbols)}
        self._max_symbol_len = max(len(s) for s in symbols)

    # -- geometry -------------------------------------------------------------------

    def size(self) -> int:
        """Number of labels, NOT counting the CTC blank."""
        return len(self._symbols)

    @property
    def blank_index(self) -> int:
        """The CTC blank: the last class, ``size()``, as in DeepSpeech."""
        return self.size()

    @property
    def n_classes(self) -> int:
        """Logits the model emits per frame: ``size() + 1`` (labels + blank)."""
        return self.size() + 1

    @property
    def symbols(self) -> Tuple[str, ...]:
        """Symbol of each label, in label order (the blank is not included)."""
        return self._symbols

    @property
    def space_index(self) -> Optional[int]:
        """Label of the space symbol, or None when the alphabet has no space."""
        return self._str_to_label.get(" ")

    # -- text <-> labels --------------------------------------------------------------

    def encode(self, text: str) -> List[int]:
        """Labels of ``text``; raise AlphabetError naming the characters not covered."""
        labels, unknown = self._tokenize(text)
        if unknown:
            shown = (
                text
                if len(text) <= _MAX_TEXT_IN_ERROR
                else text[:_MAX_TEXT_IN_ERROR] + "..."
            )
            raise AlphabetError(
                f"characters {unknown} are not in the alphabet ({self._source}) "
                f"in text {shown!r}; add them to the alphabet or clean the transcript"
            )
        return labels

    def unknown_chars(self, text: str) -> List[str]:
        """The characters of ``text`` that :meth:`encode` rejects, sorted and unique."""
        return self._tokenize(text)[1]

    def can_encode(self, text: str) -> bool:
        """True when :meth:`encode` succeeds on ``text``."""
        return not self._tokenize(text)[1]

    def decode(self, labels: Iterable[int]) -> str:
        """Text of ``labels`` (ints or numpy ints); the blank index is skipped.

        This maps labels one to one; collapsing CTC repeats is the decoder's job.
        """
        return "".join(self._symbols[i] for i in self._check_labels(labels))

    def characters(self, labels: Sequence[int]) -> List[Tuple[str, int]]:
        """``(text, index of its first label)`` per output character of ``labels``.

        One per label here; :class:`UTF8Alphabet` groups the bytes of a character, so
        token metadata lists characters, as DeepSpeech 0.9's did.
        """
        return [(self._symbols[i], n) for n, i in enumerate(self._check_labels(labels))]

    def is_complete(self, labels: Sequence[int]) -> bool:
        """True when ``labels`` decode without loss (always, for a symbol alphabet)."""
        return True

    def _check_labels(self, labels: Iterable[int]) -> List[int]:
        """``labels`` as ints without blanks; raise AlphabetError if out of range."""
        out = []
        for label in labels:
            label = int(label)
            if label == self.blank_index:
                continue
            if not 0 <= label < self.size():
                raise AlphabetError(
                    f"label {label} is outside [0, {self.n_classes}) of this alphabet"
                )
            out.append(label)
        return out

    def _tokenize(self, text: str) -> Tuple[List[int], List[str]]:
        """(labels, sorted unknown characters); longest symbol wins at each position."""
        table = self._str_to_label
        if self._max_symbol_len == 1:
            labels = [table.get(c, -1) for c in text]
            unknown = {c for c, label in zip(text, labels) if label < 0}
            return labels, sorted(unknown)
        labels: List[int] = []
        unknown_set: Set[str] = set()
        pos = 0
        while pos < len(text):
            for length in range(min(self._max_symbol_len, len(text) - pos), 0, -1):
                label = table.get(text[pos : pos + length])
                if label is not None:
                    labels.append(label)
                    pos += length
                    break
            else:
                unknown_set.add(text[pos])
                pos += 1
        return labels, sorted(unknown_set)

    # -- persistence ------------------------------------------------------------------

    def serialize(self) -> str:
        """``alphabet.txt`` text that re-parses to an equal alphabet (``#`` escaped)."""
        body = "".join(
            (ESCAPED_HASH if s == COMMENT_PREFIX else s) + "\n" for s in self._symbols
        )
        return _HEADER + body + _FOOTER

    def sha256(self) -> str:
        """Hex SHA-256 of :meth:`serialize`; tells mismatched models/scorers apart."""
        return hashlib.sha256(self.serialize().encode("utf-8")).hexdigest()

    def to_file(self, path: str) -> None:
        """Write :meth:`serialize` to ``path`` atomically (temporary file + rename)."""
        atomic_write_text(path, self.serialize(), newline="")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._symbols == other._symbols  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._symbols))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size()}, source={self._source!r})"


class UTF8Alphabet(Alphabet):
    """DeepSpeech's bytes output mode: label ``b - 1`` for each UTF-8 byte ``b`` > 0.

    ``symbols[i]`` is ``chr(i + 1)``, the byte read as Latin-1. Decoding reassembles
    the bytes and replaces invalid UTF-8 sequences with U+FFFD, because a model may
    emit a truncated multi-byte character.

    Args:
        config_file: optional file written by :meth:`to_file`; it must carry
            :data:`UTF8_MARKER`. Without it the (fixed) alphabet is built directly.
    """

    def __init__(self, config_file: Optional[str] = None) -> None:
        source = "<utf8-bytes>"
        if config_file is not None:
            if UTF8_MARKER not in _read_lines(config_file):
                raise AlphabetError(
                    f"{config_file} is not a UTF-8 bytes alphabet file (no "
                    f"{UTF8_MARKER!r} line); load it with Alphabet(path)"
                )
            source = config_file
        self._source = source
        self._symbols = tuple(chr(byte) for byte in range(1, 256))
        self._str_to_label = {s: i for i, s in enumerate(self._symbols)}
        self._max_symbol_len = 1

    @classmethod
    def from_symbols(cls, symbols: Sequence[str]) -> "Alphabet":
        raise AlphabetError(
            "UTF8Alphabet has fixed symbols; build it with UTF8Alphabet()"
        )

    @property
    def space_index(self) -> Optional[int]:
        return ord(" ") - 1

    def decode(self, labels: Iterable[int]) -> str:
        """UTF-8 text of the byte labels; invalid sequences become U+FFFD."""
        data = bytes(label + 1 for label in self._check_labels(labels))
        return data.decode("utf-8", errors="replace")

    def is_complete(self, labels: Sequence[int]) -> bool:
        """True when the bytes of ``labels`` are valid UTF-8 (no cut-off character)."""
        try:
            bytes(label + 1 for label in self._check_labels(labels)).decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def characters(self, labels: Sequence[int]) -> List[Tuple[str, int]]:
        """``(character, index of its first byte)``; a byte that starts no valid
        character stands alone as U+FFFD."""
        data = bytes(label + 1 for label in self._check_labels(labels))
        out: List[Tuple[str, int]] = []
        pos = 0
        while pos < len(data):
            width = _utf8_width(data[pos])
            try:
                char = data[pos : pos + width].decode("utf-8")
            except UnicodeDecodeError:
                char, width = "\ufffd", 1
            out.append((char, pos))
            pos += width
        return out

    def _tokenize(self, text: str) -> Tuple[List[int], List[str]]:
        """(byte labels, unknown chars): NUL and lone surrogates have no label."""
        labels: List[int] = []
        unknown: Set[str] = set()
        for char in text:
            try:
                data = char.encode("utf-8")
            except UnicodeEncodeError:
                unknown.add(char)
                continue
            if 0 in data:
                unknown.add(char)
                continue
            labels.extend(byte - 1 for byte in data)
        return labels, sorted(unknown)

    def serialize(self) -> str:
        """A comment-only file marked with :data:`UTF8_MARKER` (bytes need no list)."""
        return _UTF8_BODY


def output_alphabet(alphabet_config_path: str, bytes_output_mode: bool) -> Alphabet:
    """The model's output alphabet: :class:`UTF8Alphabet` in bytes output mode (the
    file is not read then, as in DeepSpeech 0.9), else the alphabet file's."""
    if bytes_output_mode:
        return UTF8Alphabet()
    return Alphabet(alphabet_config_path)


def _utf8_width(first: int) -> int:
    """Bytes of the UTF-8 sequence that starts with byte ``first`` (1 if invalid)."""
    if first >= 0xF0:
        return 4 if first < 0xF8 else 1
    if first >= 0xE0:
        return 3
    if first >= 0xC0:
        return 2
    return 1


def load_alphabet(path: str) -> Alphabet:
    """The alphabet in ``path``: :class:`UTF8Alphabet` if it has :data:`UTF8_MARKER`.

    Use this to read the ``alphabet.txt`` stored beside checkpoints and exports.
    """
    if UTF8_MARKER in _read_lines(path):
        return UTF8Alphabet(path)
    return Alphabet(path)


def _read_lines(path: str) -> List[str]:
    """Lines of the UTF-8 file ``path`` split on \\n, \\r\\n or \\r (BOM dropped)."""
    try:
        with open(path, "rb") as fin:
            data = fin.read()
    except OSError as err:
        raise AlphabetError(
            f"cannot read alphabet file {path!r} ({err.strerror}); check "
            "--alphabet_config_path"
        ) from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise AlphabetError(
            f"alphabet file {path!r} is not UTF-8 ({err}); re-save it as UTF-8"
        ) from err
    return LINE_BREAK.split(text)


def parse_lines(lines: Sequence[str], source: str) -> Tuple[str, ...]:
    """Symbols of alphabet.txt ``lines``, following DeepSpeech's Alphabet::init."""
    symbols: List[str] = []
    line_of: Dict[str, int] = {}
    for line_no, line in enumerate(lines, start=1):
        if line == ESCAPED_HASH:
            line = COMMENT_PREFIX
        elif line.startswith(COMMENT_PREFIX) or not line:
            continue
        if line in line_of:
            raise AlphabetError(
                f"{source} line {line_no}: symbol {line!r} already defined on line "
                f"{line_of[line]}; remove one of them"
            )
        line_of[line] = line_no
        symbols.append(line)
    return tuple(symbols)


def _check_symbols(symbols: Tuple[str, ...], source: str) -> None:
    """Raise AlphabetError unless ``symbols`` is non-empty, unique and serializable."""
    if not symbols:
        raise AlphabetError(f"{source} defines no symbols; add one symbol per line")
    seen: Dict[str, int] = {}
    for index, symbol in enumerate(symbols):
        if not isinstance(symbol, str) or not symbol:
            raise AlphabetError(f"{source}: symbol {index} ({symbol!r}) is not text")
        if LINE_BREAK.search(symbol) or symbol == ESCAPED_HASH:
            raise AlphabetError(f"{source}: symbol {index} ({symbol!r}) can't be saved")
        if symbol.startswith(COMMENT_PREFIX) and symbol != COMMENT_PREFIX:
            raise AlphabetError(
                f"{source}: symbol {index} ({symbol!r}) would read back as a comment"
            )
        if symbol in seen:
            raise AlphabetError(
                f"{source}: symbol {symbol!r} repeated at {seen[symbol]} and {index}"
            )
        seen[symbol] = index
