"""A small HTTP client for the embedrec API, used by the demo and the integration tests."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from functions.common.settings import MAX_UPLOAD_BODY_BYTES

#: Files above this go through a presigned URL (the multipart framing needs a little of the API's cap).
DIRECT_UPLOAD_MAX_BYTES = MAX_UPLOAD_BODY_BYTES - 16 * 1024


class ApiError(Exception):
    """A non-2xx answer, with its status and body."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(
            f"{response.request.method} {response.request.url.path} -> {response.status_code}: "
            f"{response.text[:500]}"
        )
        self.status_code = response.status_code
        self.body = response.text


class EmbedrecClient:
    """Calls the API as a shop (or the platform admin) would."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 120.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout)
        self.token = token

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _headers(self, token: str | None) -> dict[str, str]:
        credential = token or self.token
        return {"Authorization": f"Bearer {credential}"} if credential else {}

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        expect: tuple[int, ...] = (200, 201),
        **kwargs: Any,
    ) -> Any:
        """Send a request; return the JSON body or raise ``ApiError`` when the status is not expected."""
        response = self._http.request(method, path, headers=self._headers(token), **kwargs)
        if response.status_code not in expect:
            raise ApiError(response)
        return response.json() if response.content else None

    def wait_until_healthy(self, timeout_s: float = 60.0) -> None:
        """Poll ``/health`` until the stack answers 200."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self._http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the stack did not become healthy within {timeout_s:.0f} s")

    def create_tenant(self, admin_key: str, **body: Any) -> dict[str, Any]:
        """``POST /api/admin/tenants``."""
        result: dict[str, Any] = self.request("POST", "/api/admin/tenants", token=admin_key, json=body)
        return result

    def create_user(self, admin_key: str, **body: Any) -> dict[str, Any]:
        """``POST /api/admin/users``."""
        result: dict[str, Any] = self.request("POST", "/api/admin/users", token=admin_key, json=body)
        return result

    def open_shop(self, admin_key: str, name: str, *, plan: str = "pro", password: str) -> str:
        """Create a tenant (a fresh slug from ``name``) and its admin, log in as them; the tenant id.

        For the tests, benchmarks and tools that each need a shop of their own on a running stack.
        """
        slug = f"{name.lower().replace(' ', '-')}-{os.urandom(3).hex()}"
        tenant = self.create_tenant(admin_key, name=name, slug=slug, plan=plan)
        email = f"{slug}@example.com"
        self.create_user(admin_key, tenant_id=tenant["id"], email=email, password=password, role="admin")
        self.login(email, password)
        return str(tenant["id"])

    def login(self, email: str, password: str) -> str:
        """Log in and keep the token for later calls."""
        body = self.request("POST", "/api/v1/auth/login", json={"email": email, "password": password})
        self.token = str(body["access_token"])
        return self.token

    def upload_csv(
        self, kind: str, path: Path, *, token: str | None = None, expect: tuple[int, ...] = (200,)
    ) -> dict[str, Any]:
        """Upload a CSV file: multipart ``file=`` to /api/v1/items or /api/v1/interactions when it fits in
        one API call, else through a presigned URL (``POST /api/v1/uploads``), waiting for the report.
        """
        if path.stat().st_size > DIRECT_UPLOAD_MAX_BYTES:
            return self.upload_csv_presigned(kind, path, token=token)
        with path.open("rb") as handle:
            result: dict[str, Any] = self.request(
                "POST",
                f"/api/v1/{kind}",
                token=token,
                expect=expect,
                files={"file": (path.name, handle, "text/csv")},
            )
        return result

    def upload_csv_presigned(
        self, kind: str, path: Path, *, token: str | None = None, timeout_s: float = 300.0
    ) -> dict[str, Any]:
        """PUT the file to a presigned drop-folder URL and wait until its report is no longer pending."""
        ticket = self.request("POST", "/api/v1/uploads", token=token, expect=(201,), json={"kind": kind})
        with path.open("rb") as handle:
            response = httpx.put(ticket["url"], content=handle.read(), headers=ticket["headers"], timeout=120)
        response.raise_for_status()
        deadline = time.monotonic() + timeout_s
        while True:
            report: dict[str, Any] = self.request(
                "GET", f"/api/v1/uploads/{ticket['upload_id']}", token=token
            )
            if report["status"] != "pending":
                return report
            if time.monotonic() > deadline:
                raise TimeoutError(f"upload {ticket['upload_id']} still pending after {timeout_s:.0f} s")
            time.sleep(0.5)
