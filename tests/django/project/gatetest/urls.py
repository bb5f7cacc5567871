from django.urls import path

from . import views

urlpatterns = [
    path("api/whoami", views.whoami),
    path("api/echo", views.echo),
    path("api/form", views.form),
    path("public/whoami", views.whoami),
]
