"""The usual Django views for an SPA with session auth (csrf, login, logout, whoami), answering
the same JSON shapes as sessiongate's auth API."""
import json

from django.contrib.auth import authenticate, login, logout
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.http import require_GET, require_POST


def user_json(u):
    return {"id": u.id, "username": u.username, "email": u.email or None, "emailVerified": False,
            "mfa": False, "createdAt": u.date_joined.isoformat()}


@require_GET
def get_csrf(request):
    return JsonResponse({"csrfToken": get_token(request)})


@require_POST
def login_view(request):
    data = json.loads(request.body)
    user = authenticate(request, username=data.get("username"), password=data.get("password"))
    if user is None:
        return JsonResponse({"code": "invalid_credentials"}, status=401)
    login(request, user)
    return JsonResponse({"user": user_json(user), "csrfToken": get_token(request)})


@require_POST
def logout_view(request):
    logout(request)
    return HttpResponse(status=204)


@require_GET
def session_view(request):
    if not request.user.is_authenticated:
        return JsonResponse({"code": "not_authenticated"}, status=401)
    s = request.session
    return JsonResponse({
        "user": user_json(request.user),
        "session": {"id": s.session_key[:8], "current": True,
                    "expiresAt": s.get_expiry_date().isoformat()},
    })
