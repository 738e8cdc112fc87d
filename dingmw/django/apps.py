"""The Django app config: `"dingmw.django"` in `INSTALLED_APPS`."""

from __future__ import annotations

from django.apps import AppConfig


class DingmwConfig(AppConfig):
    name = "dingmw.django"
    label = "dingmw"
    verbose_name = "DingTalk login (dingmw)"

    def ready(self) -> None:
        # The admin's login page offers "log in with DingTalk" (and says why a logged-in
        # person who is not staff cannot enter), unless the project chose its own page.
        from django.conf import settings

        if "django.contrib.admin" in settings.INSTALLED_APPS:
            from django.contrib import admin

            if admin.site.login_template is None:
                admin.site.login_template = "dingmw/admin_login.html"
