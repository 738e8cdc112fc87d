"""A Django site behind DingTalk login with `dingmw.django` (docs/quickstart-django.md).

dingmw's own settings (`DINGMW_APP_KEY`, `DINGMW_APP_SECRET`, `DINGMW_SECRET_KEY`, ...)
come from the environment here; they may also be set in this file.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-example-only-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "dingmw.django",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dingmw.django.middleware.DingTalkMiddleware",  # after the session and auth middlewares
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "dingmw.django.backends.DingTalkBackend",
    "django.contrib.auth.backends.ModelBackend",  # keeps createsuperuser's password working
]
LOGIN_URL = "/dingtalk/login"  # @login_required sends people to DingTalk

# Paths that need no DingTalk login (dingmw's DINGMW_PUBLIC_PATHS).
DINGMW_PUBLIC_PATHS = "/health,/static/*"
# How a DingTalk person becomes a Django user: members of department 100 are staff.
DINGMW_DJANGO = {
    "USERNAME": "userid",
    "STAFF_DEPTS": [100],
    "SUPERUSER_USERS": [u for u in os.environ.get("EXAMPLE_SUPERUSERS", "").split(",") if u],
}

ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
    }
}

USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
