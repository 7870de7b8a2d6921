"""Top-level functions the loader tests hand to workers through ``Transform(user_fn=...)``."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np


def fail_always(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    raise ValueError("boom from user_fn")


class Unpicklable(Exception):
    """An exception that cannot cross a pipe: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def fail_unpicklable(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    raise Unpicklable("cannot pickle me")


def invert(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 255 - image


def slow(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    time.sleep(0.01)
    return image


def die(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    os.kill(os.getpid(), signal.SIGKILL)
    return image


_calls = 0


def fail_on_ninth_call_marked(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The image unchanged; on this process's ninth call, touch ``$DATUMIO_TEST_MARK`` and
    raise (a sign for the test that the batches before it were sent)."""
    global _calls
    _calls += 1
    if _calls == 9:
        with open(os.environ["DATUMIO_TEST_MARK"], "w"):
            pass
        raise ValueError("boom on the ninth call")
    return image


def wait_for_release(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Block until the file ``$DATUMIO_TEST_RELEASE`` exists (at most 60 s), marking
    ``$DATUMIO_TEST_MARK`` first: the test then inspects the worker mid-batch."""
    with open(os.environ["DATUMIO_TEST_MARK"], "w"):
        pass
    deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["DATUMIO_TEST_RELEASE"]) and time.monotonic() < deadline:
        time.sleep(0.005)
    return image


def _refuse_to_load() -> None:
    raise RuntimeError("this user_fn cannot be loaded in a worker")


class LoadsNowhere:
    """A user_fn that pickles but cannot be unpickled: a worker fails before it is ready."""

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return image

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_refuse_to_load, ())


def count_calls(image: np.ndarray, rng: np.random.Generator, folder: str) -> np.ndarray:
    """The image unchanged; each call adds a file to ``folder`` (bind it with
    ``functools.partial``; an environment variable would reach a forkserver's workers only
    as it was when the server started): the test counts them to know how many images the
    workers have finished."""
    global _calls
    _calls += 1
    with open(os.path.join(folder, f"{os.getpid()}-{_calls}"), "w"):
        pass
    return image


def fail_once_at_call(
    image: np.ndarray, rng: np.random.Generator, call: int, marker: str
) -> np.ndarray:
    """The image unchanged, but raise on this process's ``call``-th call if the file
    ``marker`` does not exist yet (it is created then: the failure happens once per test)."""
    global _calls
    _calls += 1
    if _calls == call and not os.path.exists(marker):
        with open(marker, "w"):
            pass
        raise ValueError("boom once")
    return image


def _passthrough(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image


def _after_gate(started: str, gate: str) -> object:
    """Runs while a worker unpickles its job: says so (a file), then waits for ``gate``."""
    with open(f"{started}.{os.getpid()}", "w"):
        pass
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return _passthrough


class GatedStart:
    """A ``user_fn`` (the identity) whose unpickling in a worker, before the worker's own
    code runs, announces itself and blocks until a file exists: a test can send a signal
    exactly while a worker is starting."""

    def __init__(self, started: str, gate: str) -> None:
        self.started, self.gate = started, gate

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return image

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return _after_gate, (self.started, self.gate)
