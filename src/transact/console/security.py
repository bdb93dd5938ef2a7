"""Who may talk to the console, and which requests change state.

- Loopback by default. Any other bind address needs a token (``--token`` or
  ``TRANSACT_CONSOLE_TOKEN``); then every data request carries ``Authorization: Bearer <token>``.
  The static page shell (no data in it) and ``/healthz`` are served without it, so a browser can
  load the login prompt and a process manager can probe liveness.
- Without a token, the ``Host`` header must name a loopback address: a page on another site that
  rebinds its DNS name to 127.0.0.1 is refused.
- State-changing requests (POST, DELETE) need the header ``X-Transact-Console: 1`` (a cross-site
  form cannot set it, and a cross-site script cannot without a CORS preflight the console never
  grants) and, when the browser sends them, a same-origin ``Origin`` and ``Sec-Fetch-Site``.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass
from typing import Protocol

ENV_TOKEN = "TRANSACT_CONSOLE_TOKEN"
CSRF_HEADER = "X-Transact-Console"
_LOOPBACK_NAMES = ("localhost", "localhost.", "ip6-localhost")


class Headers(Protocol):
    """A request's headers (``http.server``'s message, or a dict in tests)."""

    def get(self, name: str, /) -> str | None: ...


class SecurityError(Exception):
    """A refused request: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or a Host header's name) stays on this machine."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def resolve_token(token: str | None) -> str | None:
    """The token from the argument, else the environment; empty means none."""
    value = token if token is not None else os.environ.get(ENV_TOKEN)
    return value or None


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a token (ValueError names the fix)."""
    if not is_loopback(host) and not token:
        raise ValueError(
            f"the console would listen on {host!r}, which other machines can reach, without a token: "
            f"pass --token TOKEN (or set {ENV_TOKEN}), or bind 127.0.0.1"
        )


def _host_name(host_header: str) -> str:
    """The name part of a Host header (``[::1]:8321`` -> ``::1``, ``a:80`` -> ``a``)."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    if host_header.count(":") == 1:
        return host_header.partition(":")[0]
    return host_header


@dataclass(frozen=True)
class Policy:
    """The console's access rules for one server."""

    token: str | None = None
    read_only: bool = False

    def check_host(self, headers: Headers) -> None:
        if self.token:
            return  # the token is the protection; any name may reach a deliberately exposed console
        host = headers.get("Host") or ""
        if host and not is_loopback(_host_name(host)):
            raise SecurityError(403, f"host {host!r} is not a loopback name; open the console at http://127.0.0.1")

    def check_auth(self, headers: Headers) -> None:
        if not self.token:
            return
        given = headers.get("Authorization") or ""
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            raise SecurityError(401, "this console needs a token: send 'Authorization: Bearer <token>'")

    def check_change(self, headers: Headers) -> None:
        """A state-changing request: allowed by the mode and not forgeable from another site."""
        if self.read_only:
            raise SecurityError(403, "the console is read-only (started with --read-only)")
        if headers.get(CSRF_HEADER) != "1":
            raise SecurityError(403, f"state-changing requests need the header '{CSRF_HEADER}: 1'")
        site = headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise SecurityError(403, f"cross-site request refused (Sec-Fetch-Site: {site})")
        origin = headers.get("Origin")
        if origin is not None:
            host = headers.get("Host") or ""
            if origin not in (f"http://{host}", f"https://{host}"):
                raise SecurityError(403, f"cross-origin request refused (Origin {origin!r} is not this console)")
