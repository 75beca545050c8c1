"""The ``.scorer`` package: one file with a KenLM binary, its vocabulary and alphabet.

DeepSpeech's scorer carried the LM and a vocabulary trie but not the alphabet, so a
scorer built for another alphabet loaded silently and decoded garbage; truncated
downloads failed deep inside KenLM with opaque errors (DeepSpeech#3426, #3053). This
format makes both a clear :class:`ScorerError` at load time.

Layout (all integers little-endian)::

    offset  size  field
    0       8     MAGIC  b"DSSCORER"
    8       4     format version (uint32), FORMAT_VERSION
    12      8     header length H (uint64)
    20      H     header: UTF-8 JSON (alphabet text + sha256, default alpha/beta,
                  bytes_output_mode, vocabulary, LM size + sha256)
    20+H    8     LM length L (uint64)
    28+H    L     the KenLM binary, byte for byte (``build_binary`` output)
    28+H+L  32    SHA-256 of every byte before it

KenLM can only load a model from a path, so reading extracts the LM into a cache file
(next to the scorer, or in the temp dir when that directory is read-only), named after
the LM's SHA-256. It is written to a temporary name and renamed, so a reader never sees
a half-written LM, and it is reused only while its bytes equal the package's LM (they
are compared on every read, as the package is read for its checksum anyway; a cache
file corrupted in place is extracted again, never handed to KenLM). Rewriting the
defaults with ``lm_optimizer.py`` keeps it.

DeepSpeech 0.9's own packages (a KenLM binary followed by a vocabulary trie, see
ds09_scorer.py) are read too: :func:`read_scorer_package` recognises them by their
KenLM start, recovers the word list from the trie with the model's alphabet (0.9
packages record none) and returns the same :class:`ScorerPackage`, whose ``lm_path``
is then the package itself (KenLM loads it as is).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from typing import BinaryIO, Dict, Iterator, List, Optional, Sequence, Tuple

from absl import logging

from . import ds09_scorer
from .alphabet import (
    LINE_BREAK,
    UTF8_MARKER,
    Alphabet,
    AlphabetError,
    UTF8Alphabet,
    parse_lines,
)
from .fileio import atomic_write

MAGIC = b"DSSCORER"
FORMAT_VERSION = 1
KIND_NATIVE = "native"
KIND_DS09 = "deepspeech-0.9"  # DeepSpeech 0.9 package (ds09_scorer.py)
_PREFIX = struct.Struct("<8sIQ")  # magic, format version, header length
_U64 = struct.Struct("<Q")
_DIGEST_SIZE = 32  # bytes of the SHA-256 trailer
_CHUNK = 1 << 20  # bytes per read when copying/hashing the LM
# KenLM's binary files start with this text (lm/binary_format.cc, kMagicBeforeVersion).
KENLM_BINARY_MAGIC = b"mmap lm http://kheafield.com/code"
_MAX_HEADER = 1 << 31  # bytes; a larger "header length" means this is not a scorer
_CACHE_DIR_NAME = "ctcdecode-scorers"  # under the temp dir when the scorer's dir is r/o
_HEADER_KEYS = frozenset(
    (
        "alphabet",
        "alphabet_sha256",
        "bytes_output_mode",
        "default_alpha",
        "default_beta",
        "lm_sha256",
        "lm_size",
        "vocab",
    )
)


class ScorerError(ValueError):
    """A file that is not a usable scorer package, or one built for another alphabet."""


@dataclass(frozen=True)
class ScorerPackage:
    """What a ``.scorer`` file holds, with the LM extracted to ``lm_path``.

    ``default_alpha`` weights the LM score and ``default_beta`` is the bonus per word
    (DeepSpeech's ``lm_alpha``/``lm_beta``), as tuned by ``lm_optimizer.py``.
    """

    path: str  # the .scorer file
    lm_path: str  # KenLM binary extracted from it (a cache file; do not delete)
    vocab: Tuple[str, ...]  # words the LM knows, most frequent first
    alphabet: Alphabet
    alphabet_sha256: str
    default_alpha: float
    default_beta: float
    bytes_output_mode: bool
    format_version: int
    lm_sha256: str  # empty for 0.9 packages (their LM is not extracted)
    kind: str = KIND_NATIVE  # or KIND_DS09


def write_scorer_package(
    path: str,
    lm_binary_path: str,
    vocab: Sequence[str],
    alphabet: Alphabet,
    default_alpha: float,
    default_beta: float,
    bytes_output_mode: bool,
) -> None:
    """Write a scorer package to ``path`` atomically (temporary file + rename).

    Args:
        path: the ``.scorer`` file to (over)write.
        lm_binary_path: KenLM binary written by ``build_binary`` (not ARPA: the binary
            loads in milliseconds with mmap, ARPA parses for minutes).
        vocab: the LM's words; duplicates are dropped, order kept.
        alphabet: the model's output alphabet; must be :class:`UTF8Alphabet` exactly
            when ``bytes_output_mode`` is true.

    Raises:
        ScorerError: the LM is not a KenLM binary, the vocabulary is empty or holds a
            word with whitespace, or the alphabet does not match ``bytes_output_mode``.
    """
    _check_lm_binary(lm_binary_path)
    words = _clean_vocab(vocab)
    if bytes_output_mode != isinstance(alphabet, UTF8Alphabet):
        raise ScorerError(
            f"bytes_output_mode={bytes_output_mode} needs "
            f"{'a' if bytes_output_mode else 'no'} UTF-8 bytes alphabet, got "
            f"{alphabet!r}"
        )
    _warn_unspellable(words, alphabet)
    if bytes_output_mode:
        warn_not_character_based(words)
    lm_size, lm_sha256 = _file_digest(lm_binary_path)
    header = {
        "alphabet": alphabet.serialize(),
        "alphabet_sha256": alphabet.sha256(),
        "bytes_output_mode": bool(bytes_output_mode),
        "default_alpha": float(default_alpha),
        "default_beta": float(default_beta),
        "lm_sha256": lm_sha256,
        "lm_size": lm_size,
        "vocab": words,
    }
    header_bytes = json.dumps(header, ensure_ascii=False).encode("utf-8")
    digest = hashlib.sha256()
    with atomic_write(path, "wb") as fout:
        _write(fout, digest, _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes)))
        _write(fout, digest, header_bytes)
        _write(fout, digest, _U64.pack(lm_size))
        with open(lm_binary_path, "rb") as fin:
            while chunk := fin.read(_CHUNK):
                _write(fout, digest, chunk)
        fout.write(digest.digest())
    logging.info(
        "wrote scorer %s: %d words, LM %.1f MiB, alpha %g, beta %g",
        path,
        len(words),
        lm_size / 2**20,
        default_alpha,
        default_beta,
    )


def read_scorer_package(
    path: str, cache_dir: Optional[str] = None, alphabet: Optional[Alphabet] = None
) -> ScorerPackage:
    """Read and verify ``path``; extract its LM unless an identical cache file exists.

    Args:
        path: a file written by :func:`write_scorer_package`, or a DeepSpeech 0.9
            package.
        cache_dir: where to put the extracted LM; default: next to ``path``, or
            ``<tempdir>/ctcdecode-scorers`` when that directory is not writable.
        alphabet: the model's alphabet; needed to read a DeepSpeech 0.9 package, whose
            vocabulary is stored as alphabet labels.

    Raises:
        ScorerError: missing, not a scorer, newer format, truncated or corrupted; a
            0.9 package without ``alphabet`` or built for another alphabet.
    """
    if ds09_scorer.is_ds09_scorer(path):
        return _read_ds09_package(path, alphabet)
    try:
        fin = open(path, "rb")
    except OSError as err:
        raise ScorerError(
            f"cannot open scorer {path!r} ({err.strerror}); check --scorer_path"
        ) from err
    with fin:
        size = os.fstat(fin.fileno()).st_size
        digest = hashlib.sha256()
        version, header = _read_header(fin, path, size, digest)
        lm_size = _read_lm_size(fin, path, size, header, digest)
        lm_path = _cache_path(path, header["lm_sha256"], cache_dir)
        _extract_lm(fin, path, lm_size, lm_path, digest)
    alphabet = _alphabet_from_text(header["alphabet"], path)
    sha = header["alphabet_sha256"]
    if alphabet.sha256() != sha:
        raise ScorerError(f"scorer {path!r}: its alphabet does not match its hash")
    return ScorerPackage(
        path=path,
        lm_path=lm_path,
        vocab=tuple(header["vocab"]),
        alphabet=alphabet,
        alphabet_sha256=sha,
        default_alpha=float(header["default_alpha"]),
        default_beta=float(header["default_beta"]),
        bytes_output_mode=bool(header["bytes_output_mode"]),
        format_version=version,
        lm_sha256=header["lm_sha256"],
    )


def _read_ds09_package(path: str, alphabet: Optional[Alphabet]) -> ScorerPackage:
    """A DeepSpeech 0.9 package as a ScorerPackage spelled with ``alphabet``."""
    if alphabet is None:
        raise ScorerError(
            f"{path!r} is a DeepSpeech 0.9 scorer, which records no alphabet: read it "
            "with the model's alphabet"
        )
    bytes_model = isinstance(alphabet, UTF8Alphabet)
    try:
        package = ds09_scorer.read_ds09_scorer(
            path, alphabet.space_index, utf8_mode=bytes_model
        )
        ds09_scorer.check_labels(package, alphabet.size())
    except ds09_scorer.DS09ModeMismatch as err:
        raise ScorerError(bytes_mode_mismatch(path, err.utf8_mode)) from err
    except ds09_scorer.DS09ScorerError as err:
        raise ScorerError(str(err)) from err
    except OSError as err:
        raise ScorerError(
            f"cannot open scorer {path!r} ({err.strerror}); check --scorer_path"
        ) from err
    broken = [w for w in package.words if not alphabet.is_complete(w)]
    if broken:
        raise ScorerError(
            f"scorer {path!r}: {len(broken)} vocabulary entries are not valid UTF-8; "
            "it is corrupt or was not built for a bytes output mode model"
        )
    return ScorerPackage(
        path=path,
        lm_path=path,
        vocab=tuple(alphabet.decode(w) for w in package.words),
        alphabet=alphabet,
        alphabet_sha256=alphabet.sha256(),
        default_alpha=package.default_alpha,
        default_beta=package.default_beta,
        bytes_output_mode=package.utf8_mode,
        format_version=ds09_scorer.TRIE_VERSION,
        lm_sha256="",
        kind=KIND_DS09,
    )


def write_ds09_package(
    path: str,
    lm_binary_path: str,
    vocab: Sequence[str],
    alphabet: Alphabet,
    default_alpha: float,
    default_beta: float,
) -> int:
    """Write ``path`` in DeepSpeech 0.9's format, for 0.9 clients; returns the number
    of words stored (0.9 too leaves out words the alphabet cannot spell).

    With a :class:`UTF8Alphabet` the package is in bytes output mode (0.9's
    ``--force_bytes_output_mode``): the trie spells each vocabulary entry in UTF-8
    bytes without a trailing space.

    Raises:
        ScorerError: an alphabet without space, an LM that is not a KenLM binary
            built with ``-v``, or no spellable word.
    """
    bytes_mode = isinstance(alphabet, UTF8Alphabet)
    if alphabet.space_index is None:
        raise ScorerError(
            "a DeepSpeech 0.9 word scorer needs an alphabet with a space symbol"
        )
    words = [w for w in _clean_vocab(vocab) if w not in ("<s>", "</s>", "<unk>")]
    _warn_unspellable(words, alphabet)
    if bytes_mode:
        warn_not_character_based(words)
    spelled = [alphabet.encode(w) for w in words if alphabet.can_encode(w)]
    if not spelled:
        raise ScorerError("no vocabulary word can be spelled with the alphabet")
    try:
        ds09_scorer.write_ds09_scorer(
            path,
            lm_binary_path,
            spelled,
            alphabet.space_index,
            default_alpha,
            default_beta,
            utf8_mode=bytes_mode,
        )
    except ds09_scorer.DS09ScorerError as err:
        raise ScorerError(str(err)) from err
    return len(spelled)


def check_alphabet(package: ScorerPackage, alphabet: Alphabet) -> None:
    """Raise ScorerError unless ``package`` was built for ``alphabet``.

    A scorer spells its words with the alphabet's labels; with another alphabet the
    labels mean other characters and beam search returns garbage without an error,
    which is what DeepSpeech did.
    """
    if alphabet.sha256() == package.alphabet_sha256:
        return
    if package.bytes_output_mode != isinstance(alphabet, UTF8Alphabet):
        raise ScorerError(bytes_mode_mismatch(package.path, package.bytes_output_mode))
    built, model = package.alphabet, alphabet
    only_scorer = sorted(set(built.symbols) - set(model.symbols))[:10]
    only_model = sorted(set(model.symbols) - set(built.symbols))[:10]
    detail = (
        f"symbols only in the scorer's: {only_scorer}, only in the model's: "
        f"{only_model}"
        if only_scorer or only_model
        else "same symbols in a different order"
    )
    raise ScorerError(
        f"scorer {package.path!r} was built for alphabet sha256 "
        f"{package.alphabet_sha256[:12]} ({built.size()} labels) but the model's "
        f"alphabet {model!r} is sha256 {model.sha256()[:12]} ({model.size()} labels); "
        f"{detail}. Rebuild the scorer with generate_scorer_package.py --alphabet "
        "<the model's alphabet.txt>"
    )


def bytes_mode_mismatch(path: str, scorer_bytes_mode: bool) -> str:
    """The error for a bytes output mode scorer with a character model, or reverse."""
    if scorer_bytes_mode:
        return (
            f"scorer {path!r} is a bytes output mode scorer (its LM scores UTF-8 "
            "characters) but the model outputs the labels of an alphabet file; use a "
            "scorer built with generate_scorer_package.py --alphabet <the model's "
            "alphabet.txt>, or a model trained with --bytes_output_mode"
        )
    return (
        f"scorer {path!r} was built for an alphabet file but the model is in bytes "
        "output mode (it outputs UTF-8 bytes); build a scorer for it with "
        "generate_scorer_package.py --force_bytes_output_mode (doc/SCORER.rst)"
    )


def looks_character_based(words: Sequence[str]) -> bool:
    """True when every word is one character: DeepSpeech 0.9's test for a vocabulary
    meant for bytes output mode ("Bytes Are All You Need")."""
    return all(len(w) == 1 for w in words)


def warn_not_character_based(words: Sequence[str]) -> None:
    """Log, as 0.9 did, that a bytes-mode vocabulary holds multi-character words."""
    long_words = [w for w in words if len(w) > 1]
    if long_words:
        logging.warning(
            "bytes output mode: %d of %d vocabulary entries are longer than one "
            "character (e.g. %s); a bytes-mode scorer scores each entry as one LM "
            "token and puts no space after it, which suits a character LM (one "
            "character per entry, as DeepSpeech 0.9 expects); see doc/SCORER.rst",
            len(long_words),
            len(words),
            long_words[:5],
        )


def rewrite_defaults(path: str, default_alpha: float, default_beta: float) -> None:
    """Replace the default alpha/beta of the scorer at ``path``, keeping the rest.

    The LM comes from the extraction cache, so the cache stays valid afterwards.
    A DeepSpeech 0.9 package keeps its format: only its two header numbers change.
    """
    if ds09_scorer.is_ds09_scorer(path):
        try:
            ds09_scorer.rewrite_ds09_defaults(path, default_alpha, default_beta)
        except ds09_scorer.DS09ScorerError as err:
            raise ScorerError(str(err)) from err
        return
    package = read_scorer_package(path)
    write_scorer_package(
        path,
        package.lm_path,
        package.vocab,
        package.alphabet,
        default_alpha,
        default_beta,
        package.bytes_output_mode,
    )


# -- writing helpers ------------------------------------------------------------------


def _check_lm_binary(lm_path: str) -> None:
    try:
        with open(lm_path, "rb") as fin:
            start = fin.read(len(KENLM_BINARY_MAGIC))
    except OSError as err:
        raise ScorerError(f"cannot read LM {lm_path!r} ({err.strerror})") from err
    if start != KENLM_BINARY_MAGIC:
        hint = " (this looks like ARPA text)" if start.startswith(b"\\data\\") else ""
        raise ScorerError(
            f"{lm_path!r} is not a KenLM binary{hint}; convert it with "
            "`tools/kenlm/bin/build_binary` or build it with data/lm/generate_lm.py"
        )


def _clean_vocab(vocab: Sequence[str]) -> List[str]:
    """Words in first-seen order without duplicates; raise on empty or spaced words."""
    if isinstance(vocab, str):
        raise ScorerError("vocab must be a sequence of words, not one string")
    words: Dict[str, None] = {}
    for word in vocab:
        if not word or any(c.isspace() for c in word):
            raise ScorerError(
                f"vocabulary word {word!r} is empty or holds whitespace; give one "
                "word per entry"
            )
        words.setdefault(word, None)
    if not words:
        raise ScorerError("the vocabulary is empty; the scorer needs the LM's words")
    return list(words)


def _warn_unspellable(words: Sequence[str], alphabet: Alphabet) -> None:
    """Log words the alphabet cannot spell: the decoder can never output them."""
    bad = [w for w in words if not alphabet.can_encode(w)]
    if bad:
        logging.warning(
            "%d of %d vocabulary words use characters outside the alphabet and can "
            "never be decoded, e.g. %s",
            len(bad),
            len(words),
            bad[:5],
        )


def _file_digest(path: str) -> Tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fin:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _write(fout: BinaryIO, digest: "hashlib._Hash", data: bytes) -> None:
    digest.update(data)
    fout.write(data)


# -- reading helpers ------------------------------------------------------------------


def _read_exact(
    fin: BinaryIO, n: int, path: str, what: str, digest: "hashlib._Hash"
) -> bytes:
    data = fin.read(n)
    if len(data) != n:
        raise _truncated(path, what)
    digest.update(data)
    return data


def _truncated(path: str, what: str) -> ScorerError:
    return ScorerError(
        f"scorer {path!r} is truncated (ends inside its {what}); download or build "
        "it again"
    )


def _read_header(
    fin: BinaryIO, path: str, size: int, digest: "hashlib._Hash"
) -> Tuple[int, dict]:
    """(format version, header dict) after checking the magic and the version."""
    start = fin.read(_PREFIX.size)
    if len(start) < len(MAGIC) or start[: len(MAGIC)] != MAGIC:
        raise ScorerError(
            f"{path!r} is not a scorer package (neither this project's {MAGIC!r} "
            "magic nor a DeepSpeech 0.9 package's KenLM start); build one with "
            "native_client/generate_scorer_package.py"
        )
    if len(start) < _PREFIX.size:
        raise _truncated(path, "prefix")
    digest.update(start)
    _, version, header_len = _PREFIX.unpack(start)
    if version != FORMAT_VERSION:
        raise ScorerError(
            f"scorer {path!r} has format version {version}; this decoder reads "
            f"version {FORMAT_VERSION}. Rebuild it with this version's "
            "generate_scorer_package.py"
        )
    if header_len > min(size, _MAX_HEADER):
        raise _truncated(path, "header")
    raw = _read_exact(fin, header_len, path, "header", digest)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ScorerError(f"scorer {path!r} has a corrupted header ({err})") from err
    missing = sorted(_HEADER_KEYS - set(header)) if isinstance(header, dict) else ["*"]
    if missing:
        raise ScorerError(f"scorer {path!r} has a corrupted header (lacks {missing})")
    return version, header


def _read_lm_size(
    fin: BinaryIO, path: str, size: int, header: dict, digest: "hashlib._Hash"
) -> int:
    """LM length, after checking that the file holds exactly LM + checksum."""
    (lm_size,) = _U64.unpack(_read_exact(fin, _U64.size, path, "LM size", digest))
    expected = fin.tell() + lm_size + _DIGEST_SIZE
    if size < expected:
        raise ScorerError(
            f"scorer {path!r} is truncated: {size} bytes, expected {expected}; "
            "download or build it again"
        )
    if size > expected or lm_size != header.get("lm_size"):
        raise ScorerError(
            f"scorer {path!r} is corrupted: {size} bytes, expected {expected}"
        )
    return lm_size


def _extract_lm(
    fin: BinaryIO, path: str, lm_size: int, lm_path: str, digest: "hashlib._Hash"
) -> None:
    """Verify the checksum and make ``lm_path`` hold exactly the package's LM.

    A cache file is reused only when its bytes equal the package's (compared while
    the package is read for its checksum anyway): a cache file of the right size
    but other content (a flipped byte, a partial copy) once made KenLM crash the
    process. Otherwise the LM is copied again (atomically) into place.
    """
    lm_start = fin.tell()
    cached = _same_content(fin, path, lm_size, lm_path, digest)
    if fin.read(_DIGEST_SIZE) != digest.digest():
        raise ScorerError(
            f"scorer {path!r} is corrupted (checksum mismatch); download or "
            "build it again"
        )
    if cached:
        return
    if os.path.exists(lm_path):
        logging.warning(
            "LM cache %s differs from the LM in %s; extracting it again", lm_path, path
        )
    fin.seek(lm_start)
    with atomic_write(lm_path, "wb") as fout:
        for chunk in _lm_chunks(fin, path, lm_size):
            fout.write(chunk)
    logging.info("extracted the LM of %s to %s", path, lm_path)
    _remove_stale_extractions(lm_path)


def _same_content(
    fin: BinaryIO, path: str, lm_size: int, lm_path: str, digest: "hashlib._Hash"
) -> bool:
    """Hash the LM's ``lm_size`` bytes of ``fin``; True if ``lm_path`` holds them."""
    try:
        cache: Optional[BinaryIO] = open(lm_path, "rb")
        if os.fstat(cache.fileno()).st_size != lm_size:
            cache.close()
            cache = None
    except OSError:
        cache = None
    same = cache is not None
    try:
        for chunk in _lm_chunks(fin, path, lm_size):
            digest.update(chunk)
            if same and cache is not None and cache.read(len(chunk)) != chunk:
                same = False
    finally:
        if cache is not None:
            cache.close()
    return same


def _lm_chunks(fin: BinaryIO, path: str, lm_size: int) -> Iterator[bytes]:
    """The next ``lm_size`` bytes of ``fin`` in pieces of at most _CHUNK bytes."""
    left = lm_size
    while left:
        chunk = fin.read(min(_CHUNK, left))
        if not chunk:
            raise _truncated(path, "LM")
        yield chunk
        left -= len(chunk)


def _remove_stale_extractions(lm_path: str) -> None:
    """Delete LMs extracted from earlier contents of the same scorer (rebuilt LM)."""
    directory = os.path.dirname(lm_path)
    prefix = os.path.basename(lm_path).rsplit(".lm-", 1)[0] + ".lm-"
    for name in os.listdir(directory):
        stale = os.path.join(directory, name)
        if name.startswith(prefix) and name.endswith(".kenlm") and stale != lm_path:
            try:
                os.remove(stale)  # a process that has it mmapped keeps its copy
            except OSError:
                pass


def _cache_path(path: str, lm_sha256: str, cache_dir: Optional[str]) -> str:
    """Where the LM of ``path`` is extracted; named by content so it can be reused."""
    if not isinstance(lm_sha256, str) or len(lm_sha256) != 64:
        raise ScorerError(f"scorer {path!r} has a corrupted header (LM hash)")
    if cache_dir is None:
        cache_dir = os.path.dirname(os.path.abspath(path))
        if not os.access(cache_dir, os.W_OK):
            cache_dir = os.path.join(tempfile.gettempdir(), _CACHE_DIR_NAME)
    os.makedirs(cache_dir, exist_ok=True)
    name = f"{os.path.basename(path)}.lm-{lm_sha256[:16]}.kenlm"
    return os.path.join(cache_dir, name)


def _alphabet_from_text(text: str, path: str) -> Alphabet:
    """The Alphabet whose ``serialize()`` is ``text``."""
    lines = LINE_BREAK.split(text)
    try:
        if UTF8_MARKER in lines:
            return UTF8Alphabet()
        return Alphabet.from_symbols(parse_lines(lines, f"{path} (alphabet)"))
    except AlphabetError as err:
        raise ScorerError(f"scorer {path!r} holds an invalid alphabet: {err}") from err
