"""Running a service process: logging, start-up, and a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from services.common.context import ServiceContext

LOG = logging.getLogger(__name__)


class Component(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class Periodic:
    """Call ``function`` every ``interval`` seconds in a thread, logging failures."""

    def __init__(self, name: str, interval: float, function: Callable[[], Any]) -> None:
        self.name = name
        self.interval = interval
        self.function = function
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.function()
            except Exception:
                LOG.exception("periodic task %s failed", self.name)
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def run_service(
    prog: str,
    description: str | None,
    components: Callable[[ServiceContext], list[Component]],
    argv: list[str] | None = None,
) -> None:
    """The ``main`` of a consuming service: config, logging, components, signals."""
    from services.common.config import load_config
    from services.common.context import build_context
    from services.common.memory import return_big_buffers_to_the_system

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config-file", help="INI file (see etc/overcast/overcast.conf.sample)")
    args = parser.parse_args(argv)
    config = load_config(args.config_file)
    setup_logging(config.service.log_level)
    return_big_buffers_to_the_system()
    context = build_context(config)
    try:
        run_until_signalled(components(context))
    finally:
        context.close()


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(process)d %(threadName)s %(name)s: %(message)s",
    )
    for noisy in ("amqp", "kombu", "paramiko", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def run_until_signalled(
    components: list[Component],
) -> None:
    """Start ``components``, block until SIGTERM or SIGINT, then stop them."""
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        LOG.info("received signal %d, stopping", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started: list[Component] = []
    try:
        for component in components:
            component.start()
            started.append(component)
        while not stopping.wait(0.5):
            pass
    finally:
        for component in reversed(started):
            try:
                component.stop()
            except Exception:
                LOG.exception("stopping %s failed", type(component).__name__)
