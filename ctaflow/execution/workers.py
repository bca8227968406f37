"""Worker processes of the local runner: long-lived spawned processes that run jobflow jobs.

Why this shape (see :func:`ctaflow.execution.local.run_flow`):

* **spawn**, not fork: jobs run torch/OpenMP models, and forking a process whose OpenMP runtime
  is initialised is unsafe; a spawned worker also inherits no file descriptor, so the runner's
  work-directory lock dies with the runner. Each worker imports jobflow once and runs many jobs;
  a model cached by an engine (``lru_cache``) is loaded once per worker. The environment
  (``OMP_NUM_THREADS``, ``CTAFLOW_MODEL_CACHE``, ...) is the runner's at the time the pool starts.
* **the runner process is the only writer of the stores**: a worker runs ``Job.run`` against an
  in-memory ``JobStore`` (references were resolved by the runner) and sends back the documents
  the job wrote; the runner stores them. Concurrent writers on the embedded MontyDB store fail
  (measured: a half-written ``monty.storage.cfg`` when two processes connect at once, "no such
  table" when two create a collection at once), and a worker killed mid-job can never leave a
  partial document.
* **no orphans**: when the runner dies (``kill -9``) a worker interrupts its job like Ctrl-C and
  exits: on Linux the kernel signals it at once (``PR_SET_PDEATHSIG``), and every worker checks
  every :data:`PARENT_CHECK_S` seconds that the runner is alive. A worker that dies (e.g.
  out-of-memory killer) is reported by :meth:`WorkerPool.wait` with its exit status.

Jobs and responses are pickled with :func:`dumps`, which also handles plain functions decorated
with jobflow's ``@job`` (stdlib pickle refuses them: the module attribute is the decorator's
wrapper, not the function a Job holds).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import logging
import logging.handlers
import os
import pickle
import signal
import threading
import time
import traceback
import types
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctaflow.errors import CtaflowError
from ctaflow.noise import quiet_known_noise

logger = logging.getLogger(__name__)

#: seconds between a worker's checks that the runner process is still alive
PARENT_CHECK_S = 1.0
#: seconds a worker gets to stop after SIGINT before it is killed
STOP_GRACE_S = 5.0

#: what a job run gives back: ("ok", docs, blobs by store name, CPU seconds (:func:`cpu_seconds`),
#: response without output),
#: ("error", one-line message, traceback text) or ("unloadable", reason, "") when the worker
#: cannot unpickle the job (the runner then runs it itself)
Outcome = tuple


# --------------------------------------------------------------------------- pickling
class _JobPickler(pickle.Pickler):
    """Pickles functions decorated with ``@job`` by the name of their decorator wrapper."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is types.FunctionType and "<locals>" not in obj.__qualname__:
            try:
                wrapper = _lookup(obj.__module__, obj.__qualname__)
            except (ImportError, AttributeError):
                return NotImplemented
            if wrapper is not obj and getattr(wrapper, "original", None) is obj:
                return _decorated_original, (obj.__module__, obj.__qualname__)
        return NotImplemented


def _lookup(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _decorated_original(module: str, qualname: str) -> Any:
    """The function behind the ``@job`` wrapper ``module.qualname`` (the unpickling side)."""
    return _lookup(module, qualname).original


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` (jobs, flows, responses) for a worker process."""
    buffer = io.BytesIO()
    _JobPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


loads = pickle.loads


# --------------------------------------------------------------------------- the worker side
def store_layout(store: Any) -> tuple[list[str], Any]:
    """What a worker needs to mimic ``store``: its additional store names and ``save`` rules."""
    return sorted(store.additional_stores), store.save


def run_job(job: Any, job_dir: str | Path, layout: tuple[list[str], Any]) -> Outcome:
    """Run ``job`` (references already resolved) in ``job_dir`` against an in-memory store.

    Returns the documents the job wrote (``_id`` removed) for the runner to store, and its
    response without the output (the output is in the documents).
    """
    from jobflow import CURRENT_JOB, JobStore
    from maggma.stores import MemoryStore

    names, save = layout
    tag = uuid.uuid4().hex  # mongomock clients may share collections: unique names
    memory = JobStore(
        MemoryStore(f"docs-{tag}"),
        additional_stores={name: MemoryStore(f"{name}-{tag}") for name in names},
        save=save,
    )
    memory.connect()
    cpu = cpu_seconds()
    try:
        with contextlib.chdir(job_dir):
            response = job.run(store=memory)
        cpu = cpu_seconds() - cpu
        docs = _drain(memory.docs_store)
        blobs = {name: _drain(s) for name, s in memory.additional_stores.items()}
        return "ok", docs, blobs, cpu, dataclasses.replace(response, output=None)
    except Exception as exc:  # the job's failure, reported to the runner
        return "error", f"{type(exc).__name__}: {exc}", traceback.format_exc()
    finally:
        CURRENT_JOB.reset()


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and by the child processes it
    waited for (a MACE training, a VASP stand-in): a job's CPU time is the difference."""
    import resource

    own, waited = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime


def _drain(store: Any) -> list[dict]:
    docs = [{k: v for k, v in d.items() if k != "_id"} for d in store.query({})]
    store._collection.drop()
    return docs


class _PipeQueue:
    """The 'queue' of a QueueHandler: log records go to the runner through the worker's pipe."""

    def __init__(self, send: Any) -> None:
        self.send = send

    def put_nowait(self, record: logging.LogRecord) -> None:
        self.send(("log", record))


def worker_main(conn: Any, runner_pid: int, log_level: int, output: str | None = None) -> None:
    """Entry point of a worker process: run jobs received on ``conn`` until told to stop;
    ``output``: file its standard output and error are appended to (None: the runner's).

    Messages in: ``("job", task_id, pickled job, job_dir, store layout)``; None or the end of
    the pipe: stop.
    Messages out: ``("ready",)`` once started, then ``("log", LogRecord)`` and
    ``("result", task_id, outcome)``.
    """
    if output is not None:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    lock = threading.Lock()

    def send(message: tuple) -> None:
        data = dumps(message)
        with lock:
            conn.send_bytes(data)

    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(_PipeQueue(send))]
    root.setLevel(log_level)
    logging.captureWarnings(True)  # as the CLI does: warnings go to the runner's log
    quiet_known_noise()  # as the CLI does: no round-off warnings of scipy's logm
    _interrupt_when_parent_dies()
    threading.Thread(target=_watch_runner, args=(runner_pid,), daemon=True).start()
    home = os.getcwd()
    try:
        send(("ready",))
        while True:
            message = loads(conn.recv_bytes())
            if message is None:
                return
            _, task_id, payload, job_dir, layout = message
            try:
                job = loads(payload)
            except Exception as exc:  # e.g. its function lives in a module not importable here
                outcome = ("unloadable", f"a worker process cannot load it ({exc!r})", "")
            else:
                try:
                    outcome = run_job(job, job_dir, layout)
                except SystemExit as exc:  # a job calling sys.exit fails; the worker goes on
                    outcome = ("error", f"SystemExit: {exc.code}", traceback.format_exc())
            os.chdir(home)
            try:
                send(("result", task_id, outcome))
            except OSError:
                raise
            except Exception as exc:  # pickling its documents or response failed
                message = f"the job's results could not be sent to the runner: {exc!r}"
                send(("result", task_id, ("error", message, traceback.format_exc())))
    except (EOFError, OSError, KeyboardInterrupt):
        return  # the runner stopped or was interrupted: the job stays unfinished


def _interrupt_when_parent_dies() -> None:
    """Linux: have the kernel send SIGINT to this worker the moment the runner dies (the
    thread of :func:`_watch_runner` covers other systems and a runner that died earlier)."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGINT))


def _watch_runner(runner_pid: int) -> None:
    """Stop this worker when the runner process died (it was reparented)."""
    while os.getppid() == runner_pid:
        time.sleep(PARENT_CHECK_S)
    os.kill(os.getpid(), signal.SIGINT)  # interrupt the job as Ctrl-C would
    time.sleep(STOP_GRACE_S)
    os._exit(1)


# --------------------------------------------------------------------------- the runner side
@dataclass
class _Worker:
    process: Any
    conn: Any
    task: int | None = None
    ready: bool = False  # it started and imported what it needs


class WorkerPool:
    """Up to ``size`` spawned worker processes, started when jobs need them; ``output``: file
    receiving their standard output and error (None: this process's).

    Use as a context manager: on exit every worker is stopped (SIGINT, then SIGKILL after
    :data:`STOP_GRACE_S` seconds when the run ends with an exception, e.g. Ctrl-C).
    """

    def __init__(
        self, size: int, layout: tuple[list[str], Any], output: str | Path | None = None
    ) -> None:
        import multiprocessing

        self.size = size
        self.layout = layout
        self.output = None if output is None else str(Path(output).resolve())
        self._context = multiprocessing.get_context("spawn")
        self._idle: list[_Worker] = []
        self._busy: dict[int, _Worker] = {}

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.close(interrupt=exc_type is not None)

    def next_pid(self) -> int:
        """Pid of the worker the next :meth:`submit` will use (started now if needed)."""
        if not self._idle:
            self._idle.append(self._start())
        return self._idle[-1].process.pid

    def submit(self, task_id: int, payload: bytes, job_dir: Path) -> int:
        """Send a pickled job to an idle (or new) worker; return the worker's pid."""
        message = dumps(("job", task_id, payload, str(job_dir), self.layout))
        while True:
            worker = self._idle.pop() if self._idle else self._start()
            try:
                worker.conn.send_bytes(message)
            except OSError:  # it died while idle (e.g. out of memory): use another
                self._discard(worker)
                _check_started(worker)
                continue
            worker.task = task_id
            self._busy[task_id] = worker
            return worker.process.pid

    def wait(self) -> list[tuple[int, Outcome]]:
        """Block until jobs finish; return their (task id, outcome). Logs are re-emitted here."""
        from multiprocessing.connection import wait

        done: list[tuple[int, Outcome]] = []
        while not done and self._busy:
            by_handle: dict[Any, _Worker] = {}
            for worker in self._busy.values():
                by_handle[worker.conn] = by_handle[worker.process.sentinel] = worker
            for handle in wait(list(by_handle)):
                worker = by_handle[handle]
                if worker.task is None:
                    continue  # already handled through its other handle
                outcome = self._receive(worker)
                if outcome is not None:
                    done.append((worker.task, outcome))
                    del self._busy[worker.task]
                    worker.task = None
                    if worker.process.is_alive():
                        self._idle.append(worker)
                    else:
                        self._discard(worker)
        return done

    def _receive(self, worker: _Worker) -> Outcome | None:
        """Read the worker's pending messages: its outcome, or a failure if it died."""
        try:
            while worker.conn.poll():
                message = loads(worker.conn.recv_bytes())
                if message[0] == "log":
                    record = message[1]
                    logging.getLogger(record.name).handle(record)
                elif message[0] == "ready":
                    worker.ready = True
                elif message[0] == "result":
                    return message[2]
        except (EOFError, OSError, pickle.UnpicklingError):
            # its end of the pipe closed: it is dying (or sent garbage); reap it
            worker.process.join(timeout=STOP_GRACE_S)
            if worker.process.is_alive():
                worker.process.kill()
        if worker.process.is_alive():
            return None
        worker.process.join()
        _check_started(worker)
        return "error", _death_message(worker.process), ""

    def _start(self) -> _Worker:
        here, there = self._context.Pipe()
        process = self._context.Process(
            target=worker_main,
            args=(there, os.getpid(), logging.getLogger().getEffectiveLevel(), self.output),
            name="ctaflow-worker",
        )
        process.start()
        there.close()
        logger.info("started worker process %d", process.pid)
        return _Worker(process, here)

    def _discard(self, worker: _Worker) -> None:
        worker.conn.close()
        worker.process.join(timeout=STOP_GRACE_S)

    def close(self, interrupt: bool = False) -> None:
        """Stop every worker: idle ones at once (SIGTERM: they hold nothing, the runner stored
        their results), busy ones with SIGINT so that their jobs stop as on Ctrl-C; whatever
        still runs after :data:`STOP_GRACE_S` seconds is killed."""
        workers = self._idle + list(self._busy.values())
        self._idle, self._busy = [], {}
        for worker in workers:
            if worker.process.is_alive():
                with contextlib.suppress(OSError):
                    if worker.task is None:
                        worker.process.terminate()
                    else:
                        os.kill(worker.process.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        if workers and not interrupt:
            logger.info("stopped %d worker processes", len(workers))


def _check_started(worker: _Worker) -> None:
    """A worker that died before it was ready means no worker can run here: stop the run."""
    if not worker.ready:
        raise CtaflowError(
            f"a worker process could not start (exit status {worker.process.exitcode}; its "
            "error output above says why). A script calling run_flow with several workers "
            "must do so under 'if __name__ == \"__main__\":'; or run with one worker"
        )


def _death_message(process: Any) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        how = f"was killed by {name}" + (
            " (e.g. by the out-of-memory killer)" if name == "SIGKILL" else ""
        )
    else:
        how = f"exited with status {code}"
    return (
        f"WorkerDied: the worker process (pid {process.pid}) running this job {how} before "
        "the job finished"
    )
