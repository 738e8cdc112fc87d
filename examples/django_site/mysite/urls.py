"""URLs of the example site. dingmw's own routes (`/dingtalk/...`) need no entry here."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", views.health),
    path("", views.home),
]
