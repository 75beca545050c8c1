"""DeepSpeech 0.9 ``.scorer`` packages (trie format version 6): read and write.

Layout, from DeepSpeech 0.9.3 ``native_client/ctcdecode/scorer.cpp``
(``Scorer::load_lm``, ``load_trie``, ``save_dictionary``) and OpenFST 1.6.7
(``const-fst.h``, ``fst.cc`` ``FstHeader``, ``util.cc`` ``AlignInput``); little-endian::

    0        the KenLM binary, built without vocabulary strings (build_binary -v)
    T        int32  magic 'TRIE' (bytes b"EIRT")      T = KenLM's end of search data
    T+4      int32  version 6
    T+8      bool   is_utf8_mode (1 byte)
    T+9      double alpha, double beta               (the scorer's defaults)
    T+25     FstHeader: int32 magic 2125659606, string "const", string "standard"
             (int32 length + bytes), int32 version (1 = aligned), int32 flags
             (4 = IS_ALIGNED), uint64 properties, int64 start, numstates, numarcs
    pad      zeros to the next multiple of 16 of the *file* offset
    states   numstates x {float final weight, uint32 pos, narcs, niepsilons, noepsilons}
    pad      zeros to the next multiple of 16
    arcs     numarcs x {int32 ilabel, int32 olabel, float weight, int32 nextstate}
    EOF

The FST is a minimal deterministic acceptor of the vocabulary: each word spelled in
alphabet labels **plus one** (label 0 is OpenFST's epsilon), followed by the space
label (in UTF-8 mode, bytes output mode: its UTF-8 bytes, label = byte - 1, and no
space), ends in a final state (weight 0; non-final states have +inf). It records no
alphabet: the labels only mean something with the model's alphabet, exactly as in
DeepSpeech 0.9. The word list is recovered by walking every path of the FST.

DeepSpeech computed T with its KenLM fork (``GetEndOfSearchOffset``). KenLM here is
flashlight-text's, so T is found as the last ``'TRIE', 6`` header from which the FST
parses to exactly the end of the file; KenLM itself then loads the package file as is
(it reads the model and ignores what follows), so nothing is extracted.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .fileio import atomic_write

TRIE_MAGIC = struct.pack("<i", 0x54524945)  # 'TRIE' as a C multi-char int32
TRIE_VERSION = 6
_TRIE_HEADER = struct.Struct("<4si?dd")  # magic, version, utf8 mode, alpha, beta
FST_MAGIC = 2125659606
FST_TYPE = b"const"
ARC_TYPE = b"standard"
FST_ALIGNED_VERSION = 1  # ConstFstImpl::kAlignedFileVersion (save_dictionary aligns)
FST_IS_ALIGNED = 4  # FstHeader::IS_ALIGNED
FST_ALIGNMENT = 16  # MappedFile::kArchAlignment, bytes
_FST_COUNTS = struct.Struct("<iiQqqq")  # version, flags, properties, start, ns, na
STATE_DTYPE = np.dtype(
    [
        ("weight", "<f4"),
        ("pos", "<u4"),
        ("narcs", "<u4"),
        ("nie", "<u4"),
        ("noe", "<u4"),
    ]
)
ARC_DTYPE = np.dtype(
    [("ilabel", "<i4"), ("olabel", "<i4"), ("weight", "<f4"), ("next", "<i4")]
)
KENLM_MAGIC = b"mmap lm http://kheafield.com/code"
# Offset of FixedWidthParameters.has_vocabulary in a KenLM v5 binary: the 88-byte
# Sanity block (56-byte magic, 3 floats, 2 WordIndex, padding, uint64), then order
# (uchar + padding), probing_multiplier (float), model_type (int), has_vocabulary.
KENLM_HAS_VOCABULARY_OFFSET = 100

# OpenFST property bits (properties.h) of a trimmed, deterministic, acyclic acceptor.
_PROPS = {
    "expanded": 0x1,
    "acceptor": 0x10000,
    "i_deterministic": 0x40000,
    "o_deterministic": 0x100000,
    "no_epsilons": 0x800000,
    "no_i_epsilons": 0x2000000,
    "no_o_epsilons": 0x8000000,
    "i_label_sorted": 0x10000000,
    "o_label_sorted": 0x40000000,
    "unweighted": 0x200000000,
    "acyclic": 0x800000000,
    "initial_acyclic": 0x2000000000,
    "top_sorted": 0x4000000000,
    "accessible": 0x10000000000,
    "coaccessible": 0x40000000000,
    "string": 0x100000000000,
    "not_string": 0x200000000000,
    "unweighted_cycles": 0x800000000000,
}


class DS09ScorerError(ValueError):
    """Not a readable DeepSpeech 0.9 scorer, or one that does not fit the alphabet."""


@dataclass(frozen=True)
class DS09Scorer:
    """What a 0.9 package holds; ``words`` are label sequences (alphabet indices)."""

    path: str
    trie_offset: int  # bytes of KenLM model before the trie header
    utf8_mode: bool
    default_alpha: float
    default_beta: float
    words: Tuple[Tuple[int, ...], ...]  # without the trailing space label
    n_states: int
    n_arcs: int
    properties: int


def is_ds09_scorer(path: str) -> bool:
    """True if ``path`` starts like a KenLM binary (as every 0.9 package does)."""
    try:
        with open(path, "rb") as fin:
            return fin.read(len(KENLM_MAGIC)) == KENLM_MAGIC
    except OSError:
        return False


class DS09ModeMismatch(DS09ScorerError):
    """A bytes output mode package read for a character model, or the reverse."""

    def __init__(self, path: str, utf8_mode: bool) -> None:
        super().__init__(f"scorer {path!r} has is_utf8_mode={utf8_mode}")
        self.utf8_mode = utf8_mode


def read_ds09_scorer(
    path: str, space_label: Optional[int], utf8_mode: Optional[bool] = None
) -> DS09Scorer:
    """Parse the package at ``path``; ``space_label`` is the alphabet's space index.

    ``utf8_mode``: the mode the model needs (None: either); another one raises
    :class:`DS09ModeMismatch` before the words are checked against the alphabet.

    Raises:
        DS09ScorerError: no trie, truncated, an FST that is not 0.9's, or words that do
            not end with ``space_label`` (a scorer built for another alphabet).
    """
    with open(path, "rb") as fin:
        size = os.fstat(fin.fileno()).st_size
        if size == 0:
            raise DS09ScorerError(f"scorer {path!r} is empty")
        with mmap.mmap(fin.fileno(), 0, access=mmap.ACCESS_READ) as data:
            offset, fst = _find_trie(data, size, path)
            _, _, utf8, alpha, beta = _TRIE_HEADER.unpack_from(data, offset)
            states, arcs, start, props = fst
            words = _words(states, arcs, start, path)
    if utf8_mode is not None and bool(utf8) != utf8_mode:
        raise DS09ModeMismatch(path, bool(utf8))
    if not utf8:
        words = _strip_space(words, space_label, path)
    return DS09Scorer(
        path=path,
        trie_offset=offset,
        utf8_mode=bool(utf8),
        default_alpha=float(alpha),
        default_beta=float(beta),
        words=tuple(words),
        n_states=len(states),
        n_arcs=len(arcs),
        properties=props,
    )


def trie_offset(path: str) -> int:
    """Byte offset of the trie header (= the KenLM model's size) in a 0.9 package."""
    with open(path, "rb") as fin:
        size = os.fstat(fin.fileno()).st_size
        if size == 0:
            raise DS09ScorerError(f"scorer {path!r} is empty")
        with mmap.mmap(fin.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _find_trie(data, size, path)[0]


def _find_trie(data: mmap.mmap, size: int, path: str):
    """(trie header offset, parsed FST) of the last header that parses to EOF."""
    needle = TRIE_MAGIC + struct.pack("<i", TRIE_VERSION)
    end = size
    while True:
        offset = data.rfind(needle, 0, end)
        if offset < 0:
            break
        fst = _parse_fst(data, offset + _TRIE_HEADER.size, size)
        if fst is not None:
            return offset, fst
        end = offset
    if data.rfind(TRIE_MAGIC) >= 0:
        raise DS09ScorerError(
            f"scorer {path!r} has a DeepSpeech trie of another version or is "
            "truncated; this version reads DeepSpeech 0.9 (trie version 6) packages"
        )
    raise DS09ScorerError(
        f"{path!r} is a KenLM model without a vocabulary trie, not a scorer package; "
        "package it with native_client/generate_scorer_package.py"
    )


def _parse_fst(data: mmap.mmap, pos: int, size: int):
    """(states, arcs, start, properties) of the ConstFst at ``pos``; None if it is not
    a 0.9 dictionary FST ending exactly at ``size``."""
    try:
        (magic,) = struct.unpack_from("<i", data, pos)
        pos += 4
        names = []
        for _ in range(2):
            (n,) = struct.unpack_from("<i", data, pos)
            names.append(bytes(data[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        version, flags, props, start, n_states, n_arcs = _FST_COUNTS.unpack_from(
            data, pos
        )
    except struct.error:
        return None
    pos += _FST_COUNTS.size
    if magic != FST_MAGIC or names != [FST_TYPE, ARC_TYPE] or n_states < 0:
        return None
    aligned = version == FST_ALIGNED_VERSION or flags & FST_IS_ALIGNED
    pos = _align(pos) if aligned else pos
    states_end = pos + n_states * STATE_DTYPE.itemsize
    arcs_start = _align(states_end) if aligned else states_end
    if n_arcs < 0 or arcs_start + n_arcs * ARC_DTYPE.itemsize != size:
        return None
    states = np.frombuffer(data, STATE_DTYPE, n_states, pos).copy()
    arcs = np.frombuffer(data, ARC_DTYPE, n_arcs, arcs_start).copy()
    return states, arcs, start, props


def _align(pos: int) -> int:
    return -(-pos // FST_ALIGNMENT) * FST_ALIGNMENT


def _words(states: np.ndarray, arcs: np.ndarray, start: int, path: str) -> List[list]:
    """Every accepted label sequence (labels minus one), depth first in label order."""
    n_states = len(states)
    if n_states == 0:
        return []
    if not 0 <= start < n_states or np.any(arcs["next"] < 0):
        raise DS09ScorerError(f"scorer {path!r} has a corrupted vocabulary trie")
    if np.any(arcs["next"] >= n_states) or np.any(arcs["ilabel"] < 1):
        raise DS09ScorerError(f"scorer {path!r} has a corrupted vocabulary trie")
    final = np.isfinite(states["weight"]).tolist()
    pos, narcs = states["pos"].tolist(), states["narcs"].tolist()
    labels, nexts = (arcs["ilabel"] - 1).tolist(), arcs["next"].tolist()
    words: List[list] = []
    stack: List[Tuple[int, list]] = [(start, [])]
    budget = len(arcs) * 64 + 1024  # a DAG; a cycle would never end
    while stack:
        state, prefix = stack.pop()
        budget -= 1
        if budget < 0 or len(prefix) > 4096:
            raise DS09ScorerError(f"scorer {path!r}: its trie has a cycle")
        if final[state]:
            words.append(prefix)
        first = pos[state]
        for i in range(first + narcs[state] - 1, first - 1, -1):
            stack.append((nexts[i], prefix + [labels[i]]))
    return words


def _strip_space(words: List[list], space: Optional[int], path: str) -> List[list]:
    """Words without their final space label; raise if any does not end with it."""
    if space is None:
        raise DS09ScorerError(
            f"scorer {path!r} spells words followed by a space, but the model's "
            "alphabet has no space symbol"
        )
    bad = [w for w in words if not w or w[-1] != space or space in w[:-1]]
    if bad:
        raise DS09ScorerError(
            f"scorer {path!r} does not fit the model's alphabet: {len(bad)} of "
            f"{len(words)} vocabulary entries do not end with its space label "
            f"({space}); it was built for another alphabet"
        )
    return [w[:-1] for w in words]


def check_labels(scorer: DS09Scorer, n_labels: int) -> None:
    """Raise unless every label of the vocabulary is one of ``n_labels``."""
    top = max((max(w) for w in scorer.words if w), default=-1)
    if top >= n_labels:
        raise DS09ScorerError(
            f"scorer {scorer.path!r} uses label {top} but the model's alphabet has "
            f"{n_labels} labels: it was built for another alphabet"
        )


# -- writing --------------------------------------------------------------------------


def write_ds09_scorer(
    path: str,
    lm_binary_path: str,
    words: Sequence[Sequence[int]],
    space_label: Optional[int],
    default_alpha: float,
    default_beta: float,
    utf8_mode: bool = False,
) -> None:
    """Write a DeepSpeech 0.9 package: the KenLM binary, header and trie (atomically).

    ``words`` are label sequences of the model's alphabet (without the space). The LM
    must be built without vocabulary strings (``build_binary -v``), as 0.9's was:
    0.9 looks for the trie where KenLM's vocabulary strings would start.
    ``utf8_mode`` (bytes output mode): words are UTF-8 byte labels and, as in 0.9's
    ``add_word_to_dictionary``, carry no trailing space; ``space_label`` is unused.
    """
    _check_ds09_lm(lm_binary_path)
    end = () if utf8_mode else (space_label,)
    states, arcs, start = minimal_acceptor([tuple(w) + end for w in words if w])
    with atomic_write(path, "wb") as out, open(lm_binary_path, "rb") as lm:
        while chunk := lm.read(1 << 20):
            out.write(chunk)
        # 0.9 passed alpha/beta through float (Scorer::reset_params) before storing
        # them as doubles; so does this, for identical packages.
        alpha, beta = (float(np.float32(v)) for v in (default_alpha, default_beta))
        header = _TRIE_HEADER.pack(TRIE_MAGIC, TRIE_VERSION, utf8_mode, alpha, beta)
        out.write(header)
        _write_fst(out, states, arcs, start)


def _check_ds09_lm(lm_path: str) -> None:
    with open(lm_path, "rb") as fin:
        head = fin.read(KENLM_HAS_VOCABULARY_OFFSET + 1)
    if not head.startswith(KENLM_MAGIC) or len(head) <= KENLM_HAS_VOCABULARY_OFFSET:
        raise DS09ScorerError(f"{lm_path!r} is not a KenLM binary")
    if head[KENLM_HAS_VOCABULARY_OFFSET]:
        raise DS09ScorerError(
            f"{lm_path!r} stores its vocabulary strings, where a DeepSpeech 0.9 client "
            "expects the trie; rebuild it with `build_binary -v` (as "
            "data/lm/generate_lm.py does)"
        )


def minimal_acceptor(
    sequences: Sequence[Tuple[int, ...]],
) -> Tuple[np.ndarray, np.ndarray, int]:
    """The minimal deterministic acceptor of ``sequences`` (labels >= 0) as ConstFst
    arrays (labels + 1), states in topological order from start state 0.

    A trie is built, then states with the same finality and the same labelled
    successors are merged bottom-up, which for an acyclic automaton gives the unique
    minimal one (what 0.9's Determinize + Minimize produced, up to state numbering).
    """
    children: List[Dict[int, int]] = [{}]
    final = [False]
    for seq in sequences:
        node = 0
        for label in seq:
            nxt = children[node].get(label)
            if nxt is None:
                nxt = len(children)
                children[node][label] = nxt
                children.append({})
                final.append(False)
            node = nxt
        final[node] = True
    canon = _merge_equivalent(children, final)
    order = _topological(canon[0], children, canon)
    number = {old: new for new, old in enumerate(order)}
    states = np.zeros(len(order), STATE_DTYPE)
    arc_rows: List[Tuple[int, int, float, int]] = []
    for new, old in enumerate(order):
        out = sorted(children[old].items())
        states[new] = (0.0 if final[old] else np.inf, len(arc_rows), len(out), 0, 0)
        arc_rows += [(lab + 1, lab + 1, 0.0, number[canon[c]]) for lab, c in out]
    arcs = np.array(arc_rows, ARC_DTYPE) if arc_rows else np.zeros(0, ARC_DTYPE)
    return states, arcs, 0


def _merge_equivalent(children: List[Dict[int, int]], final: List[bool]) -> List[int]:
    """canon[node]: the representative of node's equivalence class (post-order)."""
    canon = list(range(len(children)))
    registry: Dict[tuple, int] = {}
    for node in _post_order(children):
        kids = children[node]
        for label, child in kids.items():
            kids[label] = canon[child]
        key = (final[node], tuple(sorted(kids.items())))
        canon[node] = registry.setdefault(key, node)
    return canon


def _post_order(children: List[Dict[int, int]]) -> Iterator[int]:
    stack: List[Tuple[int, bool]] = [(0, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            yield node
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in children[node].values())


def _topological(
    root: int, children: List[Dict[int, int]], canon: List[int]
) -> List[int]:
    """Representatives reachable from ``root``, every arc going to a later one."""
    seen, order = set(), []
    stack: List[Tuple[int, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend(
            (canon[c], False) for _, c in sorted(children[node].items(), reverse=True)
        )
    return order[::-1]


def fst_properties(states: np.ndarray, arcs: np.ndarray) -> int:
    """OpenFST's stored properties of an acceptor built by :func:`minimal_acceptor`."""
    props = 0
    for name in (
        "expanded", "acceptor", "i_deterministic", "o_deterministic", "no_epsilons",
        "no_i_epsilons", "no_o_epsilons", "i_label_sorted", "o_label_sorted",
        "unweighted", "acyclic", "initial_acyclic", "top_sorted", "accessible",
        "coaccessible", "unweighted_cycles",
    ):  # fmt: skip
        props |= _PROPS[name]
    n_final = int(np.isfinite(states["weight"]).sum())
    single_path = bool(np.all(states["narcs"] <= 1)) and n_final == 1
    return props | _PROPS["string" if single_path else "not_string"]


def _write_fst(out, states: np.ndarray, arcs: np.ndarray, start: int) -> None:
    out.write(struct.pack("<i", FST_MAGIC))
    for name in (FST_TYPE, ARC_TYPE):
        out.write(struct.pack("<i", len(name)) + name)
    out.write(
        _FST_COUNTS.pack(
            FST_ALIGNED_VERSION,
            FST_IS_ALIGNED,
            fst_properties(states, arcs),
            start,
            len(states),
            len(arcs),
        )
    )
    _pad(out)
    out.write(states.tobytes())
    _pad(out)
    out.write(arcs.tobytes())


def _pad(out) -> None:
    pos = out.tell()
    out.write(b"\0" * (_align(pos) - pos))


def rewrite_ds09_defaults(path: str, default_alpha: float, default_beta: float) -> None:
    """Replace the default alpha/beta of a 0.9 package (lm_optimizer.py), atomically."""
    offset = trie_offset(path)
    with open(path, "rb") as fin, atomic_write(path, "wb") as out:
        while chunk := fin.read(1 << 20):
            out.write(chunk)
        out.seek(offset + 9)  # after magic, version and the utf8 flag
        out.write(struct.pack("<dd", default_alpha, default_beta))
