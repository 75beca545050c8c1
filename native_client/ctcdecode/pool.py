"""The one process pool: spawned workers that each hold one worker object.

Beam search (flashlight holds the GIL), the lm_optimizer trials and evaluate_tflite's
TFLite transcription all parallelise the same way: an object that is expensive to
build (a decoder with its LM, a TFLite interpreter) is sent to each worker process
once, and afterwards only small tasks travel. :class:`WorkerPool` does that with a
``ProcessPoolExecutor`` over *spawned* processes (forking a parent that runs TensorFlow
is unsafe) and calls a method of the worker object per task; with one process it calls
the method in this process and starts nothing.

The worker object must pickle; build unpicklable state (flashlight decoders, TFLite
interpreters) lazily inside it, on first use in the worker.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from typing import Any, Iterable, List, Optional, Sequence

# The worker object of this process, set once by _init in each spawned worker; the
# parent never sets it. The only per-process global of the pool machinery.
_WORKER: Any = None


def _init(worker: Any) -> None:
    global _WORKER
    _WORKER = worker


def _call(task: Any) -> Any:
    method, args = task
    if _WORKER is None:
        raise RuntimeError("pool worker not initialised")
    return getattr(_WORKER, method)(*args)


class WorkerPool:
    """Run ``getattr(worker, method)(*args)`` for many tasks in spawned processes.

    num_processes: worker processes; None = one per CPU core; 1 = no pool (the
    calls run here). The pool starts on the first :meth:`map` with two or more tasks
    and is reused until :meth:`close` (or the end of a ``with`` block).
    """

    def __init__(self, worker: Any, num_processes: Optional[int] = None) -> None:
        self.worker = worker
        self.num_processes = max(1, num_processes or os.cpu_count() or 1)
        self._pool: Optional[concurrent.futures.ProcessPoolExecutor] = None

    def map(
        self, method: str, tasks: Iterable[Sequence[Any]], chunksize: int = 1
    ) -> List[Any]:
        """Results of ``worker.method(*task)`` for each task, in task order."""
        tasks = [tuple(t) for t in tasks]
        if self.num_processes == 1 or len(tasks) < 2:
            call = getattr(self.worker, method)
            return [call(*t) for t in tasks]
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.num_processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init,
                initargs=(self.worker,),
            )
        work = [(method, t) for t in tasks]
        return list(self._pool.map(_call, work, chunksize=chunksize))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
