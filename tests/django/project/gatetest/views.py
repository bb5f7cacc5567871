from django.http import JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.http import require_GET, require_POST


def _username(request):
    return request.user.get_username() if request.user.is_authenticated else None


def _identity_headers(request):
    # Everything in the X-Auth-* namespace that reached Django, to prove spoofed headers did not.
    return {k: v for k, v in request.META.items() if k.startswith("HTTP_X_AUTH")}


@require_GET
def whoami(request):
    return JsonResponse({"username": _username(request), "identityHeaders": _identity_headers(request)})


@require_POST
def echo(request):
    # No csrf_exempt: Django's CsrfViewMiddleware checked Origin and the token before this ran.
    return JsonResponse({"ok": True, "username": _username(request)})


@require_GET
def form(request):
    # What a server-rendered form's {% csrf_token %} would embed; Django (re)sends the csrftoken
    # cookie with the secret it already had.
    return JsonResponse({"csrfmiddlewaretoken": get_token(request), "username": _username(request)})
