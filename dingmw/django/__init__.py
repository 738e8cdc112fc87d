"""dingmw for Django: an installable app with a middleware and an authentication backend.

    INSTALLED_APPS = [..., "dingmw.django"]
    MIDDLEWARE = [
        ...,
        "django.contrib.sessions.middleware.SessionMiddleware",
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "dingmw.django.middleware.DingTalkMiddleware",
        ...,
    ]
    AUTHENTICATION_BACKENDS = [
        "dingmw.django.backends.DingTalkBackend",
        "django.contrib.auth.backends.ModelBackend",   # optional: password logins too
    ]

The middleware is dingmw itself, as a Django middleware (no change to `wsgi.py`
or `asgi.py`, WSGI and ASGI alike): it answers `/dingtalk/*`, sends people who
are not logged in to DingTalk, and logs the DingTalk person in as a Django
`User` (created on the first visit, name and email filled, `is_staff` and
`is_superuser` from `DINGMW_DJANGO`). When the DingTalk session ends (logout,
expiry), the Django login it made ends too. Logins made otherwise
(`client.force_login(user)` in tests, the admin's password form) are left alone.
See docs/quickstart-django.md.
"""
