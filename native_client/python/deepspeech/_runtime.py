"""The exported ``.tflite`` model: its metadata and a pool of TFLite interpreters.

A TFLite interpreter is not thread-safe, so each call checks one out of a pool and
returns it afterwards; threads that run at the same time get their own interpreter
(created on demand, reused later), up to ``max_interpreters`` (default: one per CPU
core). Each interpreter holds its own repacked weights and working memory, so the
pool's memory is bounded by that number; further threads wait for a free one.
:meth:`TFLiteModel.release_idle` frees the idle ones. Signatures are described in
util/export.py and doc/EXPORT.rst.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from .errors import DeepSpeechError

SUPPORTED_FORMAT_VERSIONS = (2,)
REQUIRED_SIGNATURES = ("probabilities", "features", "metadata")


class _Slot:
    """One interpreter and its signature runners (created once each)."""

    def __init__(self, blob: bytes, num_threads: Optional[int]) -> None:
        self.interpreter = Interpreter(model_content=blob, num_threads=num_threads)
        self._runners: Dict[str, Any] = {}

    def run(self, key: str, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        runner = self._runners.get(key)
        if runner is None:
            runner = self._runners[key] = self.interpreter.get_signature_runner(key)
        return runner(**inputs)  # outputs are copies (SignatureRunner uses GetTensor)


class TFLiteModel:
    """A loaded model file: ``metadata`` dict and :meth:`run` of a signature.

    Raises DeepSpeechError: DS_ERR_NO_MODEL (no file), DS_ERR_FAIL_INTERPRETER (not a
    TFLite model), DS_ERR_MODEL_INCOMPATIBLE (no metadata, another format version).
    """

    def __init__(
        self,
        path: str,
        num_threads: Optional[int] = None,
        max_interpreters: Optional[int] = None,
    ) -> None:
        if max_interpreters is not None and max_interpreters < 1:
            raise DeepSpeechError(
                "DS_ERR_FAIL_INTERPRETER",
                f"max_interpreters must be >= 1, got {max_interpreters}",
            )
        if not os.path.isfile(path):
            raise DeepSpeechError("DS_ERR_NO_MODEL", f"model file {path!r} not found")
        with open(path, "rb") as f:
            self._blob = f.read()
        self._num_threads = num_threads
        self._idle: List[_Slot] = []
        self._lock = threading.Lock()
        self.max_interpreters = max_interpreters or os.cpu_count() or 1
        self._free = threading.BoundedSemaphore(self.max_interpreters)
        self.n_created = 1  # interpreters created so far (tests, benchmarks)
        try:
            slot = _Slot(self._blob, num_threads)
        except (ValueError, RuntimeError) as err:
            raise DeepSpeechError(
                "DS_ERR_FAIL_INTERPRETER", f"cannot load {path!r} as TFLite: {err}"
            ) from err
        signatures = slot.interpreter.get_signature_list()
        missing = [k for k in REQUIRED_SIGNATURES if k not in signatures]
        if missing:
            raise DeepSpeechError(
                "DS_ERR_MODEL_INCOMPATIBLE",
                f"{path!r} lacks the signatures {missing}: export it with "
                "DeepSpeech.py --export_tflite",
            )
        self.has_stream = "stream" in signatures
        self.has_ds2_stream = "ds2_stream" in signatures
        self.has_chunks = {"chunk_backward", "chunk_forward"} <= set(signatures)
        raw = slot.run("metadata", {})["metadata"]
        self.metadata: Dict[str, Any] = json.loads(bytes(np.asarray(raw).item()))
        version = self.metadata.get("format_version")
        if version not in SUPPORTED_FORMAT_VERSIONS:
            raise DeepSpeechError(
                "DS_ERR_MODEL_INCOMPATIBLE",
                f"{path!r} has export format version {version!r}; this client reads "
                f"{SUPPORTED_FORMAT_VERSIONS}",
            )
        self._idle.append(slot)

    @property
    def size_bytes(self) -> int:
        return len(self._blob)

    @contextlib.contextmanager
    def _slot(self) -> Iterator[_Slot]:
        with self._free:  # at most max_interpreters in use
            with self._lock:
                slot = self._idle.pop() if self._idle else None
            if slot is None:
                slot = _Slot(self._blob, self._num_threads)
                with self._lock:
                    self.n_created += 1
            try:
                yield slot
            finally:
                with self._lock:
                    self._idle.append(slot)

    def release_idle(self) -> None:
        """Drop the interpreters not in use (later calls create new ones)."""
        with self._lock:
            self._idle.clear()

    def run(self, key: str, **inputs: np.ndarray) -> Dict[str, np.ndarray]:
        """Run signature ``key``; inputs and outputs as in util/export.py."""
        with self._slot() as slot:
            try:
                return slot.run(key, inputs)
            except (ValueError, RuntimeError) as err:
                raise DeepSpeechError(
                    "DS_ERR_FAIL_RUN_SESS", f"running {key!r} failed: {err}"
                ) from err
