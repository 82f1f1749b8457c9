"""Public files fetched once into the cache, verified, and never half-written.

The cache is ``$ADVFILTER_HOME`` (default ``~/.cache/advfilter``). A file is downloaded to a
temporary name beside its target, its SHA-256 checked, and only then renamed into place, so
an interrupted or corrupted download leaves nothing a later run could mistake for the file.
Anything that stops a fetch (offline, a refused or dropped connection, an HTTP error, a
checksum mismatch) is a ``FetchError``: one line naming the URL, what went wrong and the
way round it (the command's flag for a file the user already has).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from advfilter.core.errors import AdvfilterError
from advfilter.core.progress import progress

CHUNK = 1 << 16


class FetchError(AdvfilterError):
    """A file could not be fetched or did not verify."""


def cache_home() -> Path:
    """``$ADVFILTER_HOME``, else ``~/.cache/advfilter``."""
    return Path(os.environ.get("ADVFILTER_HOME") or Path.home() / ".cache" / "advfilter")


def fetch(url: str, name: str, sha256: str | None, hint: str, timeout: float = 60.0) -> Path:
    """The cached copy of ``url`` (``cache_home()/downloads/name``), downloaded first if absent.

    ``sha256`` (hex) is checked before the file is put in place; None skips the check.
    ``hint`` ends every error line: how to do without the download. Raises FetchError.
    """
    target = cache_home() / "downloads" / name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{name}.{os.getpid()}.part")
    try:
        digest = _download(url, tmp, timeout)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise FetchError(f"cannot fetch {url}: {_reason(exc)}; {hint}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sha256 and digest != sha256.lower():
        tmp.unlink(missing_ok=True)
        raise FetchError(f"{url}: checksum mismatch (sha256 {digest}, expected {sha256}); {hint}")
    os.replace(tmp, target)
    return target


def _download(url: str, out: Path, timeout: float) -> str:
    """Stream ``url`` into ``out``; its SHA-256. A body shorter than its Content-Length is an
    IncompleteRead (the connection dropped mid-file)."""
    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(out, "wb") as fh:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        got = 0
        with progress(total=total, desc=f"downloading {url.rsplit('/', 1)[-1]}", unit="B",
                      unit_scale=True) as bar:
            while chunk := resp.read(CHUNK):
                fh.write(chunk)
                h.update(chunk)
                got += len(chunk)
                bar.update(len(chunk))
        if total is not None and got < total:
            raise http.client.IncompleteRead(b"", total - got)
    return h.hexdigest()


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few words."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        inner = exc.reason
        if isinstance(inner, socket.gaierror):
            return "host not found (offline?)"
        return str(getattr(inner, "strerror", None) or inner)
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection dropped with {exc.expected} bytes still to come"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(getattr(exc, "strerror", None) or exc) or type(exc).__name__
