"""Start and stop a real Label Studio server on a free loopback port, for the tests."""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def label_studio_bin() -> Path | None:
    path = Path(os.environ.get("LABEL_STUDIO_BIN", REPO / ".ls-venv" / "bin" / "label-studio"))
    return path if path.exists() else (Path(found) if (found := shutil.which("label-studio")) else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabelStudioServer:
    """One server process; ``restart`` keeps its data directory and port."""

    binary: Path
    data_dir: Path
    port: int
    key: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 240.0) -> None:
        env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
               "LABEL_STUDIO_USERNAME": "tester@example.com", "LABEL_STUDIO_PASSWORD": "tester-pass-123",
               "LABEL_STUDIO_USER_TOKEN": self.key, "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true"}
        log = open(self.data_dir / "server.log", "ab")
        self.process = subprocess.Popen(
            [str(self.binary), "start", "--no-browser", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                last = (self.data_dir / "server.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise RuntimeError(f"Label Studio exited ({' '.join(last)}); see {self.data_dir / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"Label Studio did not answer /health in {timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


def new_server(data_dir: Path) -> LabelStudioServer:
    binary = label_studio_bin()
    if binary is None:
        raise RuntimeError("Label Studio is not installed: run `make labelstudio` "
                           "(or set LABEL_STUDIO_BIN)")
    data_dir.mkdir(parents=True, exist_ok=True)
    return LabelStudioServer(binary, data_dir, free_port(), secrets.token_hex(20))
