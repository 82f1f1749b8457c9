"""Talking to a Label Studio server: connection, retries with backoff, errors without the key.

The API key comes from ``LABEL_STUDIO_API_KEY`` only. It is never printed or logged: every
error message passes through ``redact`` before it leaves this module.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, TypeVar

import httpx

from advfilter.core.errors import AdvfilterError

log = logging.getLogger(__name__)
T = TypeVar("T")

KEY_ENV, URL_ENV = "LABEL_STUDIO_API_KEY", "LABEL_STUDIO_URL"


class AnnotationError(AdvfilterError):
    """The Label Studio server could not be used (unreachable, refused the key, bad answer)."""


class Server:
    """A Label Studio client plus the retry policy every call goes through.

    Args:
        url: the server (``--url`` or ``$LABEL_STUDIO_URL``).
        attempts: tries per call for connection errors, timeouts and 5xx answers.
        backoff: seconds before the second try; doubled for each further one.
        timeout: seconds per HTTP request.
    """

    def __init__(self, url: str | None, attempts: int = 5, backoff: float = 0.5,
                 timeout: float = 30.0) -> None:
        from label_studio_sdk import LabelStudio

        self.url = (url or os.environ.get(URL_ENV) or "").rstrip("/")
        if not self.url:
            raise AnnotationError(f"no Label Studio URL: pass --url or set {URL_ENV}")
        self._key = os.environ.get(KEY_ENV, "")
        if not self._key:
            raise AnnotationError(f"no API key: set {KEY_ENV} (it is never taken as a flag)")
        self.attempts, self.backoff = attempts, backoff
        self.client = LabelStudio(base_url=self.url, api_key=self._key, timeout=timeout)

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        return text.replace(self._key, "***") if self._key else text

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one SDK call), retrying transient failures; AnnotationError at the end."""
        from label_studio_sdk.core.api_error import ApiError

        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except ApiError as exc:
                status = exc.status_code or 0
                if status in (401, 403):
                    raise AnnotationError(
                        f"Label Studio at {self.url} refused the API key ({status}) while {what}: "
                        f"check {KEY_ENV} (a legacy token needs LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"
                        "=true on the server)") from None
                if status < 500:
                    detail = exc.body.get("detail", "") if isinstance(exc.body, dict) else exc.body
                    raise AnnotationError(self.redact(
                        f"Label Studio at {self.url} rejected {what} ({status}): {detail}")) from None
                problem = f"HTTP {status}"
            except (httpx.TransportError, OSError) as exc:
                problem = type(exc).__name__
            if attempt < self.attempts:
                delay = self.backoff * 2 ** (attempt - 1)
                log.warning("%s: %s; retrying in %.1f s", what, problem, delay)
                time.sleep(delay)
        raise AnnotationError(self.redact(
            f"Label Studio at {self.url} failed while {what} after {self.attempts} tries: {problem}"))

    # --- the few calls advfilter needs ----------------------------------------------------
    def project(self, title: str, label_config: str, overlap: int) -> Any:
        """The project called ``title``, created with ``label_config`` if it does not exist."""
        for project in self.call("listing projects", lambda: list(self.client.projects.list())):
            if project.title == title:
                return project
        return self.call("creating the project", lambda: self.client.projects.create(
            title=title, label_config=label_config, maximum_annotations=overlap,
            overlap_cohort_percentage=100))

    def tasks(self, project_id: int, with_annotations: bool = False, page_size: int = 100) -> list[Any]:
        """All tasks of a project, page by page (each page retried on its own)."""
        from label_studio_sdk.core.api_error import ApiError

        fields = "all" if with_annotations else "task_only"

        def page_of(page: int) -> list[Any]:
            try:
                return list(self.client.tasks.list(project=project_id, fields=fields, page=page,
                                                   page_size=page_size).items)
            except ApiError as exc:
                if exc.status_code == 404 and page > 1:  # past the last page
                    return []
                raise

        out, page = [], 1
        while True:
            batch = self.call(f"reading tasks (page {page})", lambda: page_of(page))
            out += batch
            if len(batch) < page_size:
                return out
            page += 1

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> None:
        """Import ``tasks`` (each with its data ``key``). A retry first asks which keys the
        server already has: a batch it accepted before the answer was lost is not added twice."""
        pending, tried = list(tasks), False

        def attempt() -> None:
            nonlocal pending, tried
            if tried:
                have = {t.data.get("key") for t in self.tasks(project_id)}
                pending = [t for t in pending if t["key"] not in have]
            tried = True
            if pending:
                self.client.projects.import_tasks(id=project_id, request=pending)

        self.call(f"importing {len(tasks)} tasks", attempt)
