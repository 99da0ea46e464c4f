"""What the middleware puts into the ASGI scope, shaped like Starlette's auth objects.

``scope["user"]`` answers ``request.user.is_authenticated`` / ``display_name`` /
``identity`` like a Starlette ``BaseUser``; ``scope["auth"]`` has the ``scopes`` that
``starlette.authentication.requires`` checks. Duck-typed: nothing here imports Starlette.
"""

from __future__ import annotations

from zerotrust import Principal


class ZeroTrustUser:
    __slots__ = ("principal",)

    def __init__(self, principal: Principal | None):
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return self.principal is not None

    @property
    def display_name(self) -> str:
        return self.principal.subject if self.principal is not None else ""

    @property
    def identity(self) -> str:
        return self.principal.subject if self.principal is not None else ""

    @property
    def scopes(self) -> frozenset[str]:
        return self.principal.scopes if self.principal is not None else frozenset()

    def __repr__(self) -> str:
        return f"ZeroTrustUser({self.identity!r})" if self.principal is not None else "ZeroTrustUser(anonymous)"


class ZeroTrustCredentials:
    """Like ``starlette.authentication.AuthCredentials``: the granted scopes (a tuple, so shared ones stay intact)."""

    __slots__ = ("scopes",)

    def __init__(self, scopes: frozenset[str] | tuple[str, ...] = ()):
        self.scopes = tuple(sorted(scopes))


ANONYMOUS = ZeroTrustUser(None)
NO_CREDENTIALS = ZeroTrustCredentials()


def user_for(principal: Principal | None) -> tuple[ZeroTrustUser, ZeroTrustCredentials]:
    if principal is None:
        return ANONYMOUS, NO_CREDENTIALS
    return ZeroTrustUser(principal), ZeroTrustCredentials(principal.scopes)
