"""Fetching the public ActivityNet release into the cache, from a real HTTP server on 127.0.0.1.

The server is ``http.server`` in a thread serving archives this test builds; the only fault
injected is the one a test names (a body cut short with the connection closed).
"""
from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from advfilter.cli import main
from advfilter.core.settings import ActivityNetConfig
from advfilter.core.fetch import FetchError, fetch
from advfilter.sources.release import captions_file, read_labels
from conftest import anet_video


class Server:
    """Serves ``files`` (path → bytes); ``/drop/<name>`` sends half of a file's bytes under its
    full Content-Length and closes the connection. ``hits`` counts requests per path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                drop = self.path.startswith("/drop/")
                body = server.files.get(self.path.replace("/drop", "", 1) if drop else self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2] if drop else body)
                if drop:
                    self.wfile.flush()
                    self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with Server() as s:
        yield s


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "advfilter-home"
    monkeypatch.setenv("ADVFILTER_HOME", str(home))
    return home


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def captions_zip(videos: dict) -> bytes:
    """An archive laid out as the ActivityNet Captions release: captions/{train,val_1,val_2}.json."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for split in ("train", "val_1", "val_2"):
            zf.writestr(f"captions/{split}.json", json.dumps(videos if split == "val_1" else {}))
    return buf.getvalue()


def cache_files(home):
    return sorted(p.name for p in home.rglob("*") if p.is_file()) if home.exists() else []


def test_a_file_is_fetched_once_then_read_from_the_cache(server, home):
    server.files["/a.bin"] = data = b"x" * 200_000
    path = fetch(f"{server.url}/a.bin", "a.bin", sha(data), "hint")
    assert path.read_bytes() == data and path.parent == home / "downloads"
    assert fetch(f"{server.url}/a.bin", "a.bin", sha(data), "hint") == path
    assert server.hits == {"/a.bin": 1}


def test_a_checksum_mismatch_is_one_line_and_leaves_nothing_in_the_cache(server, home):
    server.files["/a.bin"] = b"not what was published"
    with pytest.raises(FetchError, match=r"a\.bin: checksum mismatch .* pass --input FILE"):
        fetch(f"{server.url}/a.bin", "a.bin", "0" * 64, "pass --input FILE")
    assert cache_files(home) == []


def test_a_connection_dropped_mid_file_is_one_line_and_leaves_nothing(server, home):
    server.files["/a.bin"] = data = b"y" * 300_000
    with pytest.raises(FetchError, match="connection dropped"):
        fetch(f"{server.url}/drop/a.bin", "a.bin", sha(data), "hint")
    assert cache_files(home) == []


def test_an_unreachable_server_names_the_url_and_the_way_round(home):
    with pytest.raises(FetchError) as err:
        fetch("http://127.0.0.1:9/captions.zip", "c.zip", None, "download it yourself and pass --input FILE")
    assert "cannot fetch http://127.0.0.1:9/captions.zip" in str(err.value)
    assert str(err.value).endswith("pass --input FILE") and "\n" not in str(err.value)
    assert cache_files(home) == []


def test_the_release_split_is_extracted_from_the_archive(server, home):
    server.files["/captions.zip"] = archive = captions_zip({"v_a": anet_video("One.", label="")})
    cfg = ActivityNetConfig(captions_url=f"{server.url}/captions.zip", captions_sha256=sha(archive))
    path = captions_file(cfg, "val_1")
    assert json.loads(path.read_text())["v_a"]["sentences"] == [" One."]
    assert captions_file(cfg, "val_1") == path and server.hits == {"/captions.zip": 1}


def test_v13_labels_are_keyed_with_and_without_the_v_prefix(write):
    path = write("anet13.json", {"version": "VERSION 1.3", "database": {
        "abc": {"annotations": [{"label": "Making a cake", "segment": [0, 1]}], "subset": "training"},
        "xyz": {"annotations": [], "subset": "testing"}}})
    assert read_labels(path) == {"abc": "Making a cake", "v_abc": "Making a cake"}


def test_generate_without_input_downloads_labels_and_writes_the_default_run(
        server, home, runner, tmp_path, monkeypatch):
    videos = {"v_k1": anet_video("A woman is standing in a kitchen next to a stove.",
                                 "The woman in an apron cracks two eggs into a bowl.", label="")}
    server.files["/captions.zip"] = archive = captions_zip(videos)
    server.files["/anet13.json"] = labels = json.dumps(
        {"database": {"k1": {"annotations": [{"label": "Making an omelette"}]}}}).encode()
    monkeypatch.chdir(tmp_path)
    args = ["generate", "--source", "activitynet", "--stage", "contexts",
            "--set", f"sources.activitynet.captions_url={server.url}/captions.zip",
            "--set", f"sources.activitynet.captions_sha256={sha(archive)}",
            "--set", f"sources.activitynet.labels_url={server.url}/anet13.json",
            "--set", f"sources.activitynet.labels_sha256={sha(labels)}"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "run directory: runs/activitynet-val_1 (no --out given)" in result.stdout
    table = pd.read_parquet(tmp_path / "runs" / "activitynet-val_1" / "contexts.parquet")
    assert table["activity_label"].tolist() == ["Making an omelette"]
    assert runner.invoke(main, args).exit_code == 0  # cache hit, stage reused
    assert server.hits == {"/captions.zip": 1, "/anet13.json": 1}


def test_generate_offline_is_one_line_exit_2_and_no_run(runner, home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["generate", "--source", "activitynet", "--split", "train",
                                  "--set", "sources.activitynet.captions_url=http://127.0.0.1:9/c.zip"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot fetch http://127.0.0.1:9/c.zip")
    assert "--input FILE" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists() and cache_files(home) == []


def test_labels_file_fills_in_missing_labels(runner, write, tmp_path):
    corpus = write("val_1.json", {"v_k2": anet_video(
        "A man is kneeling on a frozen lake next to a hole.",
        "The man in a red coat pulls a small fish out of the hole.", label="")})
    labels = write("labels.json", {"v_k2": "Ice fishing"})
    result = runner.invoke(main, ["generate", "--input", str(corpus), "--labels", str(labels),
                                  "--out", str(tmp_path / "r"), "--stage", "contexts"])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(tmp_path / "r" / "contexts.parquet")["activity_label"].tolist() == ["Ice fishing"]
