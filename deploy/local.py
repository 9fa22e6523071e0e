"""Throwaway Redis and nginx on 127.0.0.1, in a folder of their own, with the configs of deploy/.

The replica test and the replicas benchmark start their servers with these; nothing here touches
the system-wide services. :func:`ensure_installed` installs the Debian packages first when they
are missing (``deploy/services.sh install``: apt-get, as root), or says what to install.

    ensure_installed()
    with RedisServer(folder / "redis") as redis, Nginx(folder / "nginx", [8441, 8442]) as proxy:
        ... redis.url, proxy.url ...
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
SERVICES_SCRIPT = DEPLOY / "services.sh"
REDIS_CONF = DEPLOY / "redis.conf"
NGINX_CONF = DEPLOY / "nginx.conf"
REDIS_BIN = "/usr/bin/redis-server"
NGINX_BIN = "/usr/sbin/nginx"
HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A server could not be installed or started; the message says what to do."""


def ensure_installed() -> None:
    """Install redis-server and nginx (Debian packages) if missing; ServiceError if impossible."""
    done = subprocess.run(["bash", str(SERVICES_SCRIPT), "install"], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise ServiceError(done.stderr.strip() or "deploy/services.sh install failed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Until something accepts connections on ``HOST:port`` (ServiceError if ``process`` exits
    or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise ServiceError(f"{process.args[0]} exited with {process.returncode} before listening on {port}")
        if time.monotonic() > deadline:
            raise ServiceError(f"nothing listens on {HOST}:{port} after {timeout:.0f} s")
        time.sleep(0.05)


class _Server:
    """A child process with its log in ``folder``; a context manager that stops it."""

    name = "server"

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = self.folder / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    env: dict[str, str] | None = None  # the child's environment (None: this process's)

    def launch(self) -> None:
        """Start the process, its output appended to its log; :meth:`wait_ready` waits for its port."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 20.0) -> None:
        try:
            wait_for_port(self.port, timeout, self.process)
        except ServiceError as exc:
            raise ServiceError(f"{self.name}: {exc}; log: {self.log_tail()}") from None

    def start(self, timeout: float = 20.0) -> None:
        """Launch and wait until it listens; stopped again if it does not."""
        self.launch()
        try:
            self.wait_ready(timeout)
        except ServiceError:
            self.stop()
            raise

    stop_seconds = 10.0  # after SIGTERM, how long it may take to exit before it is killed

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` (default :attr:`stop_seconds`); returns the exit
        code (negative: the signal that ended it), None if it was not running."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is not None:
            return process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(self.stop_seconds if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisServer(_Server):
    """redis-server with deploy/redis.conf as is, on its own port, its data in ``folder``."""

    name = "redis"

    def command(self) -> list[str]:
        return [REDIS_BIN, str(REDIS_CONF), "--port", str(self.port), "--dir", str(self.folder)]

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


class Nginx(_Server):
    """nginx with deploy/nginx.conf copied unchanged into ``folder``, listening on ``port`` and
    balancing over the replicas on ``upstream_ports``."""

    name = "nginx"

    def __init__(self, folder: Path, upstream_ports: Sequence[int], port: int | None = None) -> None:
        super().__init__(folder, port)
        self.upstream_ports = list(upstream_ports)

    def command(self) -> list[str]:
        shutil.copyfile(NGINX_CONF, self.folder / "nginx.conf")
        (self.folder / "citebot-listen.conf").write_text(f"listen {HOST}:{self.port};\n")
        (self.folder / "citebot-replicas.conf").write_text(
            "".join(f"server {HOST}:{p} max_fails=1 fail_timeout=2s;\n" for p in self.upstream_ports)
        )
        # as root, nginx's workers would switch to "nobody", who cannot enter a private temp folder
        user = ["-g", "daemon off; user root;"] if os.geteuid() == 0 else ["-g", "daemon off;"]
        return [NGINX_BIN, "-p", f"{self.folder}/", "-c", str(self.folder / "nginx.conf"), "-e", "stderr", *user]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


class Replica(_Server):
    """``citebot serve --replica`` serving by webhook on ``port``; ``env`` holds its settings
    (CITEBOT_* overrides, see :func:`replica_environment`)."""

    name = "replica"
    # the answers in flight get bot.webhook.SHUTDOWN_SECONDS (20 s) at SIGTERM, then the bot stops
    stop_seconds = 40.0

    def __init__(
        self, folder: Path, env: dict[str, str], port: int | None = None, *, citebot: str = "citebot", number: int = 0
    ) -> None:
        self.name = f"replica{number}"
        super().__init__(folder, port)
        self.env = {**env, "CITEBOT_TELEGRAM_WEBHOOK_PORT": str(self.port)}
        self.citebot = citebot

    def command(self) -> list[str]:
        return [self.citebot, "serve", "--replica"]

    def start(self, timeout: float = 0.0) -> None:
        """Launch without waiting: replicas load the model side by side, then each is waited for
        with :meth:`wait_ready`."""
        self.launch()
        self.started_at = time.monotonic()

    def wait_ready(self, timeout: float = 180.0) -> None:  # loading the model: seconds, more on a busy machine
        super().wait_ready(timeout)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no answer in flight finishes."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)


def replica_environment(
    base: dict[str, str],
    *,
    token: str,
    api_url: str,
    webhook_url: str,
    secret: str,
    state_url: str,
    index_dir: Path,
    lease_seconds: float = 10.0,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a replica: Bot API at ``api_url`` (PTB's base_url), Telegram told to
    deliver to ``webhook_url`` (the load balancer), shared state at ``state_url``."""
    return {
        **base,
        "TELEGRAM_BOT_TOKEN": token,
        "CITEBOT_TELEGRAM_BASE_URL": api_url,
        "CITEBOT_TELEGRAM_WEBHOOK_URL": webhook_url,
        "CITEBOT_TELEGRAM_WEBHOOK_SECRET": secret,
        "CITEBOT_TELEGRAM_STATE_URL": state_url,
        "CITEBOT_INDEX_DIR": str(index_dir),
        "CITEBOT_TELEGRAM_UPDATE_LEASE_SECONDS": str(lease_seconds),
        **(extra or {}),
    }
