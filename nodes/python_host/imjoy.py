# Joy — an actor-model runtime for ImJoy-style plugins.
# SPDX-License-Identifier: MIT
"""ImJoy's `api` for native-python plugins run by joy-python-host.

`from imjoy import api` (or `from imjoy_rpc import api`) gives a plugin the
api ImJoy documents, in both spellings (`showMessage` and `show_message`).
Every call returns an awaitable: an asyncio future on the plugin's event
loop, or a `concurrent.futures.Future` in a plain `def` function, which the
host runs on a worker thread so that a blocking function never stalls the
plugin's other calls.

The host (C++, module `_joy`) owns the wire: it hands calls in through
`_invoke` on the event loop thread and takes results back through the
`done` callbacks given to it. Nothing here touches a socket.
"""

import asyncio
import concurrent.futures
import functools
import inspect
import os
import sys
import threading
import traceback

import _joy

__all__ = ["api", "RemoteError", "dotdict", "shared_array"]


class RemoteError(Exception):
    """An error another plugin, the node or the core answered with."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class dotdict(dict):
    """A dict whose keys read as attributes, as ImJoy hands out `ctx`,
    `ctx.config` and services (`svc.add(1, 2)`)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __delattr__(self, key):
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None


def shared_array(shape, dtype="float64"):
    """A new, writable numpy array (uninitialised, like numpy.empty) in
    shared memory: sending it to another plugin on this machine hands over
    the memory instead of copying it. Joy's extension to ImJoy's api; any
    other numpy array is copied into shared memory once when sent."""
    import numpy

    if isinstance(shape, int):
        shape = (shape,)
    name = numpy.dtype(dtype).name
    return _joy.shared_array(name, [int(n) for n in shape])


_loop = None
_pool = None
_attachments = {}
_exported = None
_tasks = {}


def _on_loop():
    try:
        return asyncio.get_running_loop() is _loop
    except RuntimeError:
        return False


def _future():
    """A future for one answer from the host, and the callback that settles
    it. The host calls back on the loop thread."""
    if _on_loop():
        fut = _loop.create_future()

        def done(ok, value):
            if fut.done():
                return
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

        return fut, done
    cf = concurrent.futures.Future()

    def done(ok, value):
        if cf.done():
            return
        if ok:
            cf.set_result(value)
        else:
            cf.set_exception(value)

    return cf, done


def _ready(value=None):
    fut, done = _future()
    done(True, value)
    return fut


def _error(code, message):
    return RemoteError(code, message)


_MACHINERY = (
    os.path.dirname(asyncio.__file__) + os.sep,
    os.path.dirname(concurrent.futures.__file__) + os.sep,
)


def _machinery(filename):
    return filename == __file__ or filename.startswith(_MACHINERY)


def _describe_error(exc):
    """(summary, traceback) of an exception raised by plugin code, without
    the host's own frames."""
    summary = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    tb = exc.__traceback__
    # Drop the frames of this module and of the machinery that ran the
    # call: the plugin author wants theirs.
    while tb is not None and _machinery(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    trace = "".join(traceback.format_exception(type(exc), exc, tb))
    return summary, trace


async def _run(fn, args, kwargs):
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)
    ):
        result = await fn(*args, **kwargs)
    else:
        # A plain function may block: it runs on a worker thread.
        result = await _loop.run_in_executor(
            _pool, functools.partial(fn, *args, **kwargs)
        )
    while True:
        if isinstance(result, concurrent.futures.Future):
            # What a plain function's api call returned.
            result = await asyncio.wrap_future(result)
        elif inspect.isawaitable(result):
            result = await result
        else:
            return result


def _arguments_error(fn, args, kwargs):
    """Why `fn` cannot take these arguments, or None: the caller's mistake,
    told as such (as a C++ plugin's is) rather than as the plugin's
    TypeError."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins may have none
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        return "%s: %s" % (getattr(fn, "__name__", "the function"), exc)
    return None


def _invoke(call_id, fn, args, kwargs, done):
    """Runs `fn(*args, **kwargs)` for the host; `done(ok, value)` gets the
    result or the exception. `call_id` (0: none) lets the host cancel it."""
    wrong = _arguments_error(fn, args, kwargs)
    if wrong is not None:
        done(False, ("invalid_argument", wrong, ""))
        return
    task = _loop.create_task(_run(fn, args, dotdict(kwargs)))
    if call_id:
        _tasks[call_id] = task

    def finished(t):
        if call_id:
            _tasks.pop(call_id, None)
        try:
            if t.cancelled():
                done(False, ("cancelled", "the call was cancelled", ""))
                return
            exc = t.exception()
            if exc is None:
                done(True, t.result())
                return
            summary, trace = _describe_error(exc)
            done(False, (type(exc).__name__, summary, trace))
        except Exception as exc:  # the host answers the call regardless
            print("joy-python-host: cannot answer a call:", exc, file=sys.stderr)

    task.add_done_callback(finished)


def _cancel(call_id):
    task = _tasks.pop(call_id, None)
    if task is not None:
        task.cancel()


class RemoteFunction:
    """A function another plugin (or the node, or the browser) sent: calling
    it returns an awaitable of its result."""

    __slots__ = ("__joy_function__", "__name__")

    def __init__(self, handle):
        self.__joy_function__ = handle
        self.__name__ = _joy.name_of(handle)

    def __call__(self, *args, **kwargs):
        fut, done = _future()
        _joy.call(self.__joy_function__, args, kwargs, done)
        return fut

    def __repr__(self):
        return "<remote function " + self.__name__ + ">"


def _remote(handle):
    return RemoteFunction(handle)


def _public_members(obj):
    """What `api.export(obj)` publishes: callables not starting with `_`."""
    if isinstance(obj, dict):
        items = obj.items()
    else:
        items = ((name, getattr(obj, name, None)) for name in dir(obj))
    out = {}
    for name, member in items:
        if not isinstance(name, str) or name.startswith("_"):
            continue
        if callable(member) and not inspect.isclass(member):
            out[name] = member
    return out


def _params(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    names = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        names.append(p.name)
    return names


def _text(args):
    return " ".join(str(a) for a in args)


class _Api:
    """ImJoy's `api` object. Ops go to the node through the host."""

    def export(self, obj, config=None):
        global _exported
        if _exported is not None:
            raise RuntimeError("api.export() may be called only once")
        members = _public_members(obj)
        _exported = members
        _joy.export(members, {k: _params(v) for k, v in members.items()})
        return _ready()

    def log(self, *args):
        _joy.log(1, _text(args))
        return _ready()

    def error(self, *args):
        _joy.log(3, _text(args))
        return _ready()

    def warn(self, *args):
        _joy.log(2, _text(args))
        return _ready()

    def _op(self, name, *args, **kwargs):
        fut, done = _future()
        _joy.request(name, list(args), kwargs, done)
        return fut

    def getAttachment(self, name):
        """The text of the plugin file's `<attachment name="...">`."""
        if name not in _attachments:
            fut, done = _future()
            done(False, RemoteError(
                "not_found", "this plugin has no attachment '" + str(name) + "'"))
            return fut
        return _ready(_attachments[name])

    get_attachment = getAttachment

    def disposeObject(self, obj):
        # Function values are released when Python lets go of them.
        return _ready()

    dispose_object = disposeObject


def _op_method(name):
    def method(self, *args, **kwargs):
        return self._op(name, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = "ImJoy's api." + name + ", as an awaitable."
    return method


def _snake(name):
    out = []
    for ch in name:
        if ch.isupper():
            out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out)


for _name in _joy.ops():
    setattr(_Api, _name, _op_method(_name))
    if _snake(_name) != _name:
        setattr(_Api, _snake(_name), _op_method(_name))

api = _Api()


def _start(loop_fd):
    """Called by the host once the script ran: makes the loop and the worker
    pool and reads the host's inbox from `loop_fd`."""
    global _loop, _pool
    _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
    workers = int(os.environ.get("JOY_PYTHON_WORKERS", "16"))
    _pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="plugin"
    )
    _loop.add_reader(loop_fd, _joy.drain)
    return _loop


def _run_forever():
    """Runs the loop until the host stops it; then lets the cancelled calls
    finish (their except/finally blocks run) and the worker threads end.
    True when a worker still runs a function: the host then ends the
    process instead of waiting for it."""
    import time

    try:
        _loop.run_forever()
    finally:
        pending = [t for t in asyncio.all_tasks(_loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            _loop.run_until_complete(asyncio.wait(pending, timeout=2))
        _loop.run_until_complete(_loop.shutdown_asyncgens())
        _pool.shutdown(wait=False, cancel_futures=True)
    def waited_for():
        # What finalizing joins: threads that are not daemons.
        main = threading.main_thread()
        return [t for t in threading.enumerate()
                if t is not main and t.is_alive() and not t.daemon]

    deadline = time.monotonic() + 1
    while waited_for() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(waited_for())


def _stop():
    _loop.stop()


sys.modules.setdefault("imjoy_rpc", sys.modules[__name__])


def _dist_name(spec):
    """The distribution name in a requirement such as `numpy >= 1.20`."""
    import re

    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return m.group(1) if m else ""


# What a plugin may list that this host provides itself.
_PROVIDED = {"imjoy", "imjoy-rpc", "imjoy_rpc"}


def _split_pip(spec):
    """`pip:` entries list packages separated by spaces; a version
    constraint written with spaces belongs to the package before it."""
    out = []
    for token in spec.split():
        joins = token[0] in "<>=!~;," or (out and out[-1][-1] in "<>=!~,")
        if joins and out:
            out[-1] += token
        else:
            out.append(token)
    return out


def _importable(name):
    import importlib.metadata
    import importlib.util

    if not name:
        return False
    if name.lower() in _PROVIDED:
        return True
    try:
        importlib.metadata.distribution(name)
        return True
    except (importlib.metadata.PackageNotFoundError, ValueError):
        pass
    module = name.replace("-", "_")
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _check_requirements(requirements, cache_dir):
    """None when every requirement can be imported, else why not. Missing
    pip requirements go into a virtual environment under `cache_dir`, one
    per set of requirements (by hash), when pip and an index are reachable;
    the sandbox gives a plugin no network unless its manifest asks."""
    import hashlib
    import subprocess

    missing = []
    for req in requirements:
        if not isinstance(req, str) or not req.strip():
            return "requirements: entries must be non-empty strings"
        req = req.strip()
        if req.startswith("conda:"):
            return (
                "requirement '" + req + "': conda is not supported by Joy; "
                "list the package as a pip requirement instead"
            )
        if req.startswith(("repo:", "cmd:")):
            return "requirement '" + req + "': only pip requirements are supported"
        parts = _split_pip(req[4:]) if req.startswith("pip:") else [req]
        for part in parts:
            if part.startswith("-"):
                return "requirement '" + req + "': pip options are not supported"
            if not _dist_name(part):
                return "requirement '" + req + "': no package name in it"
            if not _importable(_dist_name(part)):
                missing.append(part)
    if not missing:
        return None
    digest = hashlib.sha256("\n".join(sorted(missing)).encode()).hexdigest()[:16]
    target = os.path.join(cache_dir, digest)
    if not os.path.exists(os.path.join(target, ".complete")):
        os.makedirs(target, exist_ok=True)
        try:
            proc = subprocess.run(
                [sys.executable if os.path.basename(sys.executable).startswith("python")
                 else "/usr/bin/python3", "-m", "pip", "install", "--quiet",
                 "--disable-pip-version-check", "--no-input", "--retries", "1",
                 "--timeout", "15", "--target", target]
                + missing,
                capture_output=True,
                text=True,
                timeout=600,
            )
            ok = proc.returncode == 0
            why = (proc.stderr or proc.stdout).strip().splitlines()
            why = why[-1] if why else "pip failed"
        except (OSError, subprocess.TimeoutExpired) as exc:
            ok, why = False, str(exc)
        if not ok:
            return (
                "requirement" + ("s " if len(missing) > 1 else " ")
                + ", ".join("'" + m + "'" for m in missing)
                + " not installed, and installing failed (" + why + ")"
            )
        open(os.path.join(target, ".complete"), "w").close()
    sys.path.insert(0, target)
    for part in missing:
        if not _importable(_dist_name(part)):
            return "requirement '" + part + "' installed but still not importable"
    return None
