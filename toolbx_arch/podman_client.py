"""podman-py against a real podman API socket.

``engine()`` yields a connected ``PodmanClient``: the user's own API socket when it answers
(``CONTAINER_HOST``, else podman's default rootful/rootless path), otherwise a private
``podman system service`` started on a socket in the runtime directory and stopped (and its
socket removed) when the block ends, whatever happens inside it.

podman-py errors become TbxError with exit code 125 (the container engine failed).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

from . import hostinfo, runner
from .errors import EXIT_ENGINE, TbxError


def _answers(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2.0)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            head = s.recv(64)
            return head.startswith(b"HTTP/1.") and b" 200 " in head
    except OSError:
        return False


def user_socket() -> str | None:
    """The user's podman API socket path, if one answers."""
    host = os.environ.get("CONTAINER_HOST", "")
    candidates = []
    if host.startswith("unix://"):
        candidates.append(host[len("unix://"):])
    elif not host:
        if os.getuid() == 0:
            candidates.append("/run/podman/podman.sock")
        else:
            candidates.append(str(hostinfo.runtime_dir() / "podman" / "podman.sock"))
    for c in candidates:
        if os.path.exists(c) and _answers(c):
            return c
    return None


def private_dir() -> Path:
    d = hostinfo.runtime_dir() / "tbx"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def _private_service() -> Iterator[str]:
    sock = private_dir() / f"podman-{os.getpid()}.sock"
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    log = private_dir() / f"podman-{os.getpid()}.log"
    with open(log, "wb") as logf:
        proc = runner.popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not (sock.exists() and _answers(str(sock))):
            if proc.poll() is not None:
                text = log.read_text(errors="replace").strip().splitlines()[-5:]
                raise TbxError("podman's API service did not start", details="\n".join(text),
                               fix="Check that 'podman info' works for this user", exit_code=EXIT_ENGINE)
            if time.monotonic() > deadline:
                raise TbxError("podman's API service did not answer within 20 s", exit_code=EXIT_ENGINE)
            time.sleep(0.01)
        yield str(sock)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for p in (sock, log):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


@contextlib.contextmanager
def engine() -> Iterator["object"]:
    """A connected podman-py client for the duration of the block."""
    runner.require("podman")
    import podman
    import podman.errors

    existing = user_socket()
    with contextlib.ExitStack() as stack:
        path = existing or stack.enter_context(_private_service())
        client = podman.PodmanClient(base_url=f"unix://{path}", timeout=600)
        stack.callback(client.close)
        try:
            yield client
        except podman.errors.APIError as e:
            raise api_error(e) from e
        except podman.errors.PodmanError as e:
            raise TbxError(f"container engine error: {e}", exit_code=EXIT_ENGINE) from e


def api_error(e) -> TbxError:
    explanation = getattr(e, "explanation", None) or str(e)
    return TbxError(f"podman: {explanation}", exit_code=EXIT_ENGINE)


def state_of(container) -> str:
    """A container's state from either API form (list: a string; inspect: a dict)."""
    st = container.attrs.get("State")
    if isinstance(st, dict):
        return str(st.get("Status", "unknown"))
    return str(st or "unknown")
