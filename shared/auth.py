"""Bearer JWT authentication and role/ownership authorisation for every service."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, Request

from shared.problems import Problem


class Role(StrEnum):
    """Who is acting; PP = Pejabat Pengadaan, PPK = commitment officer, treasurer = Bendahara."""

    CATALOGUE_MANAGER = "catalogue_manager"
    PP = "pp"
    PPK = "ppk"
    TREASURER = "treasurer"
    VENDOR = "vendor"
    AUDITOR = "auditor"
    INTEGRATOR = "integrator"


OPD_ROLES = frozenset({Role.PP, Role.PPK, Role.TREASURER})


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: subject, role, and the OPD or vendor it acts for."""

    subject: str
    role: Role
    opd_id: str | None = None
    vendor_id: str | None = None

    def is_vendor(self, vendor_id: object) -> bool:
        return self.role is Role.VENDOR and self.vendor_id == _canonical_id(vendor_id)


class TokenVerifier:
    """Checks bearer tokens; a token already verified is remembered until it expires."""

    # A client sends the same token with every request, and checking a signature costs more than
    # the rest of the authorisation; the cache is cleared whole when it fills up.
    CACHE_SIZE = 4096

    def __init__(self, key: str, algorithm: str, issuer: str | None = None) -> None:
        self.key = key
        self.algorithm = algorithm
        self.issuer = issuer
        self._verified: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        principal, expires = self._check(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _check(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                options={"require": ["exp", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise unauthorized(f"the token is not valid: {exc}") from None
        try:
            role = Role(claims["role"])
        except ValueError:
            raise unauthorized(f"unknown role {claims['role']!r}") from None
        principal = Principal(
            subject=str(claims["sub"]),
            role=role,
            opd_id=claims.get("opd_id"),
            vendor_id=_canonical_id(claims.get("vendor_id")),
        )
        if role is Role.VENDOR and not principal.vendor_id:
            raise unauthorized("a vendor token must carry vendor_id")
        if role in OPD_ROLES and not principal.opd_id:
            raise unauthorized(f"a {role} token must carry opd_id")
        return principal, float(claims["exp"])


def _canonical_id(value: object) -> str | None:
    """UUIDs in one spelling, so that ownership checks compare like with like."""
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return str(value)


def unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "Unauthorized",
        detail,
        type_="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="ekatalog"'},
    )


def forbidden(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail, type_="forbidden")


def mint_token(
    key: str,
    *,
    role: Role | str,
    subject: str | None = None,
    opd_id: str | None = None,
    vendor_id: str | None = None,
    ttl_seconds: int = 3600,
    algorithm: str = "HS256",
    issuer: str | None = None,
) -> str:
    """A signed token for local use and tests; production tokens come from the identity provider."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": subject or f"{Role(role).value}-{uuid.uuid4().hex[:8]}",
        "role": Role(role).value,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if opd_id:
        claims["opd_id"] = opd_id
    if vendor_id:
        claims["vendor_id"] = vendor_id
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, key, algorithm=algorithm)


# The dependencies below are coroutines: FastAPI runs a plain `def` dependency in a worker thread,
# and that hand-off cost more than everything else a request does in this module.


async def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("a bearer token is required")
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(token.strip())


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def optional_principal(request: Request) -> Principal | None:
    """For public routes: no token is fine, but a token that is sent must be valid."""
    if "authorization" not in request.headers:
        return None
    return await current_principal(request)


MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]


def requires_role(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that lets only the given roles through (403 for the others).

    It reads the token itself rather than depending on `current_principal`: every nested
    dependency is one more resolution step on every request.
    """
    allowed = frozenset(roles)

    async def check(request: Request) -> Principal:
        principal = await current_principal(request)
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise forbidden(f"role {principal.role.value} may not do this; allowed: {names}")
        return principal

    return check


def ensure_vendor_owner(principal: Principal, vendor_id: object) -> None:
    """A vendor acts only on its own records; other roles are checked by `requires_role`."""
    if principal.role is Role.VENDOR and not principal.is_vendor(vendor_id):
        raise forbidden("a vendor may act only on its own records")


def ensure_opd_member(principal: Principal, opd_id: str) -> None:
    if principal.role in OPD_ROLES and principal.opd_id != opd_id:
        raise forbidden(f"this belongs to OPD {opd_id}, not to {principal.opd_id}")
