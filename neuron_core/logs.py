"""The `Neuron` logger's default output: the `INFO:Neuron:...` lines torch-neuron prints at every
trace, on stderr, for as long as the application has not configured logging itself.

    import torch_neuron            # the plugins call install(); a trace then prints
    # INFO:Neuron:The neuron partitioner created 1 sub-graphs
    logging.basicConfig(...)       # from now on the application's handlers print them, once

The default handler stands aside (prints nothing) whenever another handler would receive the
record: one on the root logger or on the `Neuron` logger. So it never doubles a line.

The runtime writes to the child logger `Neuron.runtime` (`runtime_log`), configured by install()
from the Neuron runtime's environment variables:

NEURON_RT_LOG_LEVEL
    ERROR (the default), WARNING (or WARN), INFO, DEBUG or TRACE, in any case. TRACE is level 5,
    registered with logging as "TRACE". The level applies to `Neuron.runtime` only: the
    compile-time lines of `Neuron` stay at INFO, as torch-neuron prints them. Unset, a level the
    application gave `Neuron.runtime` itself is kept.
NEURON_RT_LOG_LOCATION
    `console` (the default): stderr, with the default output above and at the level asked for
    (DEBUG and TRACE included), until the application configures logging.
    `syslog`: the local syslog (/dev/log, else UDP localhost:514).
    Any other value is the path of a log file to append to (an extension of neuron-sim; the
    runtime knows only the first two); use `./syslog` for a file of that name.
    With syslog or a file the runtime's records go there and not to the console.

    $ NEURON_RT_LOG_LEVEL=debug NEURON_RT_LOG_LOCATION=/tmp/nrt.log python infer.py
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from typing import Mapping, NamedTuple

from .errors import NeuronError

#: the logger every part of the suite writes to (the Neuron SDK's name)
LOGGER = "Neuron"
#: the logger of the runtime's records, whose level and destination the environment sets
RUNTIME_LOGGER = "Neuron.runtime"
#: torch-neuron's line format, which is logging.basicConfig's
FORMAT = "%(levelname)s:%(name)s:%(message)s"
SYSLOG_FORMAT = "neuron-sim[%(process)d]: %(levelname)s %(name)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s pid=%(process)d: %(message)s"

ENV_LOG_LEVEL = "NEURON_RT_LOG_LEVEL"
ENV_LOG_LOCATION = "NEURON_RT_LOG_LOCATION"
#: the Neuron runtime's most verbose level, below DEBUG
TRACE = 5
logging.addLevelName(TRACE, "TRACE")
#: NEURON_RT_LOG_LEVEL's values (upper case) and the levels they stand for
LEVELS = {"ERROR": logging.ERROR, "WARNING": logging.WARNING, "WARN": logging.WARNING,
          "INFO": logging.INFO, "DEBUG": logging.DEBUG, "TRACE": TRACE}
DEFAULT_LEVEL = logging.ERROR
CONSOLE, SYSLOG = "console", "syslog"
SYSLOG_SOCKET = "/dev/log"

#: where the runtime logs: `runtime_log.info("loaded %s on NeuronCore %d", name, core)`
runtime_log = logging.getLogger(RUNTIME_LOGGER)

_lock = threading.Lock()


class DefaultHandler(logging.Handler):
    """Writes INFO and above to the current `sys.stderr` while nothing else is configured (and
    not the runtime's records that a handler of configure_runtime_logging has taken)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter(FORMAT))

    def handle(self, record) -> bool:
        if application_configured() or getattr(record, "neuron_routed", False):
            return False
        return super().handle(record)

    def emit(self, record) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never break the caller
            self.handleError(record)


class RuntimeConsoleHandler(DefaultHandler):
    """The console output of `Neuron.runtime`: like DefaultHandler, but at whatever level the
    logger lets through, DEBUG and TRACE included. A record it prints, DefaultHandler skips."""

    def __init__(self):
        super().__init__()
        self.setLevel(logging.NOTSET)


class RuntimeSysLogHandler(logging.handlers.SysLogHandler):
    """A SysLogHandler that sends TRACE as syslog's debug and does not fail when no syslog
    listens: a record it cannot send goes to logging's handleError."""

    priority_map = {**logging.handlers.SysLogHandler.priority_map, "TRACE": "debug"}

    def createSocket(self) -> None:
        try:
            super().createSocket()
        except OSError:
            self.socket = None


class _Route(NamedTuple):
    """What configure_runtime_logging applied: the (level, destination) it read, the logger level
    it set (None when it kept the application's) and the `propagate` it replaced (None if kept)."""

    key: tuple[int | None, str]
    level: int | None
    propagate: bool | None


class _Routed(logging.Filter):
    """On the handler configure_runtime_logging installed: marks the handler as its own, keeps
    what it applied, and marks each record the handler takes so DefaultHandler leaves it."""

    def __init__(self, route: _Route):
        super().__init__()
        self.route = route

    def filter(self, record) -> bool:
        record.neuron_routed = True
        return True


def application_configured() -> bool:
    """True when the application has a handler of its own on the root or `Neuron` logger."""
    neuron = logging.getLogger(LOGGER)
    if any(not isinstance(h, DefaultHandler) for h in neuron.handlers):
        return True
    return neuron.propagate and bool(logging.getLogger().handlers)


def parse_level(text: str) -> int:
    """The logging level a NEURON_RT_LOG_LEVEL value names (in any case).

    Example:
        >>> parse_level("warn"), parse_level("TRACE")
        (30, 5)
    """
    level = LEVELS.get(text.strip().upper())
    if level is None:
        raise NeuronError(f"{ENV_LOG_LEVEL}={text!r} is not a log level: "
                          f"use ERROR, WARNING, INFO, DEBUG or TRACE")
    return level


def parse_location(text: str) -> str:
    """CONSOLE, SYSLOG or the absolute path of a log file, from a NEURON_RT_LOG_LOCATION value.

    Example:
        >>> parse_location("Console"), parse_location("/var/log/nrt.log")
        ('console', '/var/log/nrt.log')
    """
    text = text.strip()
    if not text or text.lower() == CONSOLE:
        return CONSOLE
    if text.lower() == SYSLOG:
        return SYSLOG
    path = os.path.abspath(os.path.expanduser(text))
    if os.path.isdir(path):
        raise NeuronError(f"{ENV_LOG_LOCATION}={text!r} is a directory: use console, syslog or "
                          f"the path of a log file in it")
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise NeuronError(f"{ENV_LOG_LOCATION}={text!r}: the directory {directory} does not exist; "
                          f"create it, or use console or syslog")
    return path


def _new_handler(destination: str) -> logging.Handler:
    if destination == CONSOLE:
        return RuntimeConsoleHandler()
    if destination == SYSLOG:
        address = SYSLOG_SOCKET if os.path.exists(SYSLOG_SOCKET) else ("localhost", 514)
        handler = RuntimeSysLogHandler(address)
        handler.setFormatter(logging.Formatter(SYSLOG_FORMAT))
        return handler
    handler = logging.FileHandler(destination, mode="a", encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    return handler


def _installed(logger: logging.Logger) -> tuple[logging.Handler, _Route] | None:
    for handler in logger.handlers:
        for f in handler.filters:
            if isinstance(f, _Routed):
                return handler, f.route
    return None


def configure_runtime_logging(environ: Mapping[str, str] | None = None) -> logging.Handler:
    """Set the level and destination of `Neuron.runtime` from NEURON_RT_LOG_LEVEL and
    NEURON_RT_LOG_LOCATION (of `environ`, by default os.environ) and return the handler in use.

    Called again with the same values it changes nothing; with others it replaces the handler it
    installed before, and only that one. The level is set when NEURON_RT_LOG_LEVEL is, or when the
    logger has none or still the one set here before; else the application's level is kept.
    Raises NeuronError for a value it cannot use, before changing anything.

    Example:
        >>> handler = configure_runtime_logging({"NEURON_RT_LOG_LEVEL": "debug",
        ...                                      "NEURON_RT_LOG_LOCATION": "/tmp/nrt.log"})
        >>> runtime_log.level == logging.DEBUG, type(handler).__name__, runtime_log.propagate
        (True, 'FileHandler', False)
    """
    env = os.environ if environ is None else environ
    level_text = env.get(ENV_LOG_LEVEL, "").strip()
    level = parse_level(level_text) if level_text else None
    destination = parse_location(env.get(ENV_LOG_LOCATION, ""))
    key = (level, destination)
    logger = runtime_log
    with _lock:
        previous = _installed(logger)
        if previous is not None and previous[1].key == key:
            return previous[0]
        handler = _new_handler(destination)
        if previous is not None:
            old, route = previous
            logger.removeHandler(old)
            old.close()
            if route.propagate is not None and not logger.propagate:
                logger.propagate = route.propagate
        applied = None
        if level is not None or logger.level == logging.NOTSET or \
                (previous is not None and logger.level == previous[1].level):
            applied = DEFAULT_LEVEL if level is None else level
            logger.setLevel(applied)
        replaced = None
        if destination != CONSOLE and not logger.handlers:
            replaced, logger.propagate = logger.propagate, False
        handler.addFilter(_Routed(_Route(key, applied, replaced)))
        logger.addHandler(handler)
        return handler


def install() -> None:
    """Give the `Neuron` logger its default handler (once) and, when its level was never set,
    level INFO: the compile-time lines then print as torch-neuron's do. Then configure
    `Neuron.runtime` from the environment (configure_runtime_logging; NeuronError for a bad value)."""
    neuron = logging.getLogger(LOGGER)
    if not any(isinstance(h, DefaultHandler) for h in neuron.handlers):
        neuron.addHandler(DefaultHandler())
    if neuron.level == logging.NOTSET:
        neuron.setLevel(logging.INFO)
    configure_runtime_logging()
