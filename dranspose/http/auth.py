"""Optional bearer-token protection of the controller's and the reducer's HTTP APIs.

A beamline network is shared by many people and programs; anyone who can reach the controller
could otherwise start a scan or change a parameter. When ``$DRANSPOSE_TOKEN`` is set (or
``--token``), every mutating request must carry ``Authorization: Bearer <token>``; reads stay open
so viewers, h5pyd and silx keep working, unless ``$DRANSPOSE_TOKEN_READS`` (``--protect-reads``)
asks for the token on reads as well. Without a token nothing changes.

One :func:`guard` call puts a FastAPI app behind the policy, through an app-wide dependency, so a
route added later is covered without anyone remembering to protect it: any method other than
GET/HEAD/OPTIONS counts as mutating unless the route declares itself with ``openapi_extra=READ``
(the HDF5 REST API's query POSTs). ``openapi_extra=PUBLIC`` routes (``/healthz``, which probes
call, and the static dashboard page, where the token is entered) never need it.

The policy is always given: the command line reads ``$DRANSPOSE_TOKEN`` and
``$DRANSPOSE_TOKEN_READS`` once (:class:`dranspose.cli.settings.Settings`) and hands the policy to
the app it builds; an app built without one is open, as in the original dranspose.
"""

from __future__ import annotations

import hmac
from typing import Literal, Optional

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, SecretStr

TOKEN_ENV = "DRANSPOSE_TOKEN"
"""The environment variable holding the token; empty or unset means no protection. Named in
messages; :class:`dranspose.cli.settings.Settings` reads it."""
PROTECT_READS_ENV = "DRANSPOSE_TOKEN_READS"
"""Set to 1 (true, yes, on) to require the token on read requests too."""
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
"""The values of ``$DRANSPOSE_TOKEN_READS`` that mean yes (any other value means no)."""

Access = Literal["public", "read", "write"]
ACCESS_KEY = "x-dranspose-access"
PUBLIC: dict[str, str] = {ACCESS_KEY: "public"}
"""``openapi_extra`` of a route that never needs the token."""
READ: dict[str, str] = {ACCESS_KEY: "read"}
"""``openapi_extra`` of a POST route that only reads (a query too long for a URL)."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="dranspose token",
    description=f"the value of ${TOKEN_ENV} on the server; needed only when it is set",
)


class AccessPolicy(BaseModel):
    """Who may call what: no token means everyone may call everything."""

    token: Optional[SecretStr] = None
    protect_reads: bool = False

    @classmethod
    def create(cls, token: Optional[str], protect_reads: bool = False) -> AccessPolicy:
        """The policy of a token as given; empty or only whitespace means no token.

        Surrounding whitespace is dropped: a token file written by ``echo`` or mounted from a
        Kubernetes Secret often ends in a newline that nobody types into a header.
        """
        raw = (token or "").strip()
        return cls(token=SecretStr(raw) if raw else None, protect_reads=protect_reads)

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def describe(self) -> str:
        """One line for a service's start-up message."""
        if not self.enabled:
            return f"no access token (${TOKEN_ENV} unset): every endpoint is open"
        guarded = "every endpoint except /healthz" if self.protect_reads else "mutating endpoints"
        return f"{guarded} need the bearer token"

    def accepts(self, presented: Optional[str]) -> bool:
        """Compare in constant time, so response timing does not reveal a matching prefix."""
        if self.token is None:
            return True
        if presented is None:
            return False
        return hmac.compare_digest(
            presented.encode("utf8"), self.token.get_secret_value().encode("utf8")
        )


def access_of(request: Request) -> Access:
    """What a request does: the route's declaration, else its HTTP method decides."""
    route = request.scope.get("route")
    declared = (getattr(route, "openapi_extra", None) or {}).get(ACCESS_KEY)
    if declared in ("public", "read", "write"):
        return declared
    return "read" if request.method in _SAFE_METHODS else "write"


def _unauthorized(detail: str, error: Optional[str] = None) -> HTTPException:
    challenge = 'Bearer realm="dranspose"' + (f', error="{error}"' if error else "")
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


async def check_access(
    request: Request,
    credentials: Optional[HTTPAuthorizationCredentials] = Depends(_bearer),
) -> None:
    """The app-wide dependency :func:`guard` installs; raises 401 when the token is needed."""
    policy: AccessPolicy = request.app.state.access_policy
    if not policy.enabled:
        return
    access = access_of(request)
    if access == "public" or (access == "read" and not policy.protect_reads):
        return
    what = "reading" if access == "read" else "this request"
    if credentials is None:
        raise _unauthorized(
            f"{what} requires an access token: send the header 'Authorization: Bearer <token>' "
            f"with the token the server was given (${TOKEN_ENV} or --token)"
        )
    if not policy.accepts(credentials.credentials):
        raise _unauthorized(
            f"the bearer token is not the one this server was given (${TOKEN_ENV} or --token)",
            error="invalid_token",
        )


def guard(app: FastAPI, policy: Optional[AccessPolicy] = None) -> FastAPI:
    """Put every route added to ``app`` after this call behind ``policy`` (default: open).

    Call it right after creating the app: FastAPI copies the app's dependencies into each route
    when the route is added.
    """
    apply_policy(app, policy if policy is not None else AccessPolicy())
    app.router.dependencies.append(Depends(check_access))
    return app


def apply_policy(app: FastAPI, policy: AccessPolicy) -> None:
    """Make ``policy`` the one of an app :func:`guard` protects, also after its routes exist.

    The check reads the policy at each request, so an app built by a component whose
    constructor takes no policy is put behind the command line's one before it serves.
    """
    app.state.access_policy = policy


def bearer_headers(token: Optional[str]) -> dict[str, str]:
    """The header our own clients (bench scripts) send with ``token``: empty without one."""
    value = (token or "").strip()
    return {"Authorization": f"Bearer {value}"} if value else {}
