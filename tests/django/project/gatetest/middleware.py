"""request.user from sessiongate's X-Auth-User header (the recipe in docs/django.md).

sessiongate removes every client-sent X-Auth-* header (any case, `_` for `-`) on every route and
sets X-Auth-User from its own session, so the header is trustworthy as long as Django is reachable
only through sessiongate (bind it to 127.0.0.1 or a private network).
"""
from django.contrib import auth
from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import RemoteUserMiddleware
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured


class SessiongateUserBackend(RemoteUserBackend):
    # Users are created in Django (or imported), never from a header. Inactive users are refused
    # by RemoteUserBackend.user_can_authenticate().
    create_unknown_user = False


class SessiongateUserMiddleware(RemoteUserMiddleware):
    """Stateless RemoteUserMiddleware: the user of *this* request is the one the header names.

    Unlike the stock middleware it never calls auth.login(): Django writes no session and, above
    all, does not rotate the csrftoken cookie, which sessiongate owns and has bound to its own
    session. Logging out of sessiongate logs out of Django on the very next request.
    """

    header = "HTTP_X_AUTH_USER"

    def _check(self, request):
        if not hasattr(request, "user"):
            raise ImproperlyConfigured(
                "SessiongateUserMiddleware needs "
                "django.contrib.auth.middleware.AuthenticationMiddleware before it in MIDDLEWARE."
            )

    def process_request(self, request):
        self._check(request)
        username = self._username(request)
        user = auth.authenticate(request, remote_user=username) if username else None
        self._set(request, user or AnonymousUser())

    async def aprocess_request(self, request):
        self._check(request)
        username = self._username(request)
        user = await auth.aauthenticate(request, remote_user=username) if username else None
        self._set(request, user or AnonymousUser())

    def _username(self, request):
        # sessiongate sends the username's UTF-8 bytes; WSGI hands header values over decoded as
        # latin-1 (PEP 3333), so undo that for non-ASCII usernames.
        raw = request.META.get(self.header)
        if not raw:
            return None
        try:
            return raw.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return None

    @staticmethod
    def _set(request, user):
        async def auser():
            return user

        request.user = user
        request.auser = auser
