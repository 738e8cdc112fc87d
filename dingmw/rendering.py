"""Pages: Jinja2 templates (autoescaped) and their Chinese and English texts."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jinja2

from .errors import ConfigError

if TYPE_CHECKING:
    from .core.flow import Renderer

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "lang": "en",
        "login_title": "Log in with DingTalk",
        "login_hint": "Open the DingTalk app on your phone and scan the code.",
        "in_client_hint": "Logging you in with DingTalk…",
        "login_fallback": "Can't scan? Log in on DingTalk's page instead",
        "login_noscript": "This page needs JavaScript to show the QR code.",
        "widget_missing": "The DingTalk login widget could not be loaded. Check your network "
        "connection and reload the page, or use the link below.",
        "widget_failed": "The login was not completed in DingTalk (declined or cancelled in "
        "the app, or refused). Scan the code again to log in, or use the link below. DingTalk "
        "says:",
        "error_title": "Login problem",
        "try_again": "Start the login again",
        "home": "Back to the home page",
        "state_missing": "This login link is incomplete: it has no state. Please start again "
        "from the site you wanted to use.",
        "state_unknown": "This login was started in another browser or tab that has since been "
        "closed, or it has expired. Please start again.",
        "state_expired": "This login took too long and has expired. Please start again.",
        "state_used": "This login link has already been used. Please start again.",
        "state_used_logged_in": "You are still logged in as {logged_in_as}: this login link "
        "was used before (the browser's Back button, or a reload). Go on to the site.",
        "state_unknown_logged_in": "You are still logged in as {logged_in_as}: this login link "
        "is old or from another browser. Go on to the site.",
        "state_expired_logged_in": "You are still logged in as {logged_in_as}: this login link "
        "has expired. Go on to the site.",
        "code_missing": "DingTalk sent no authorization code back. Please start again.",
        "dingtalk_denied": "DingTalk did not authorize the login: it was declined (by you, in "
        "DingTalk, or by DingTalk itself). You are not logged in; start again to try once more.",
        "upstream": "DingTalk could not complete the login: the call {call} failed.",
        "upstream_timeout": "DingTalk did not answer in time (call {call}). Please try again "
        "in a moment.",
        "clock_skew": "DingTalk rejected the login because this server's clock is wrong "
        "(call {call}). The site's administrator must fix the server time.",
        "corp_not_allowed": "You are logged in to DingTalk as {who}, but this site is only for "
        "members of particular organisations.",
        "user_not_allowed": "You are logged in to DingTalk as {who}, but your account is not on "
        "this site's list of allowed people.",
        "dept_not_allowed": "You are logged in to DingTalk as {who}, but your department does not "
        "have access to this site.",
        "not_member": "You are logged in to DingTalk as {who}, but you are not a member of this "
        "organisation.",
        "how_to_get_access": "To get access, ask the site's administrator and give them your "
        "DingTalk ID: {unionid}",
        "store_unavailable": "The login service is temporarily unavailable. Please try again in "
        "a moment.",
        "not_found": "There is no such page.",
        "method_not_allowed": "This address does not accept that kind of request.",
        "bad_host": "The request's host name is not valid.",
        "bad_forwarded": "The proxy headers of this request are not valid.",
        "bad_request": "The request is not valid.",
        "technical_details": "Technical details",
        "language": "Language",
        "logout_title": "Log out",
        "logout_question": "Do you want to log out of this site?",
        "logout_everywhere_question": "Do you want to log out everywhere: on every device and "
        "every site that shares this login?",
        "logout_button": "Log out",
        "logout_everywhere_button": "Log out everywhere",
        "cancel": "Cancel",
        "cross_site_logout": "This logout request did not come from this site, so you are "
        "still logged in. Use the site's own logout button.",
        "hub_logout_title": "Log out",
        "hub_logout_confirm": "Log out of the DingTalk login service? You will have to log in "
        "again on every site that uses it.",
        "hub_logout_button": "Log out",
        "hub_logged_out": "You are logged out of the DingTalk login service.",
        "hub_logout_continue": "Continue",
        "unknown_client": "The site that sent you here is not registered at this login service.",
        "redirect_not_registered": "The site that sent you here asked to be answered at an "
        "address that is not registered for it.",
    },
    "zh": {
        "lang": "zh-CN",
        "login_title": "钉钉登录",
        "login_hint": "请使用手机钉钉扫描二维码登录。",
        "in_client_hint": "正在通过钉钉自动登录…",
        "login_fallback": "无法扫码？改用钉钉登录页面",
        "login_noscript": "显示二维码需要启用 JavaScript。",
        "widget_missing": "钉钉登录组件加载失败。请检查网络后刷新页面，或使用下方链接。",
        "widget_failed": "登录未在钉钉中完成（在钉钉中被拒绝或取消，或被拒绝）。"
        "请重新扫码登录，或使用下方链接。钉钉的提示：",
        "error_title": "登录出现问题",
        "try_again": "重新登录",
        "home": "返回首页",
        "state_missing": "登录链接不完整（缺少 state）。请从要访问的网站重新开始登录。",
        "state_unknown": "此次登录是在另一个浏览器或已关闭的标签页中发起的，或已过期。请重新登录。",
        "state_expired": "登录耗时过长，已过期。请重新登录。",
        "state_used": "此登录链接已被使用过。请重新登录。",
        "state_used_logged_in": "您仍以 {logged_in_as} 的身份登录：此登录链接已被使用过"
        "（浏览器的后退或刷新）。请直接进入网站。",
        "state_unknown_logged_in": "您仍以 {logged_in_as} 的身份登录："
        "此登录链接已失效或来自其他浏览器。请直接进入网站。",
        "state_expired_logged_in": "您仍以 {logged_in_as} 的身份登录："
        "此登录链接已过期。请直接进入网站。",
        "code_missing": "钉钉没有返回授权码。请重新登录。",
        "dingtalk_denied": "钉钉未授权此次登录：授权被拒绝（您在钉钉中拒绝了，或钉钉拒绝了）。"
        "您尚未登录，可重新登录再试一次。",
        "upstream": "钉钉未能完成登录：调用 {call} 失败。",
        "upstream_timeout": "钉钉响应超时（调用 {call}）。请稍后重试。",
        "clock_skew": "钉钉拒绝了登录，因为本服务器的时钟不准确（调用 {call}）。"
        "请联系网站管理员校准服务器时间。",
        "corp_not_allowed": "您已以 {who} 的身份登录钉钉，但本网站仅对特定组织的成员开放。",
        "user_not_allowed": "您已以 {who} 的身份登录钉钉，但您的账号不在本网站的允许名单中。",
        "dept_not_allowed": "您已以 {who} 的身份登录钉钉，但您所在的部门无权访问本网站。",
        "not_member": "您已以 {who} 的身份登录钉钉，但您不是本组织的成员。",
        "how_to_get_access": "如需访问，请联系网站管理员并提供您的钉钉 ID：{unionid}",
        "store_unavailable": "登录服务暂时不可用，请稍后重试。",
        "not_found": "页面不存在。",
        "method_not_allowed": "此地址不接受该类型的请求。",
        "bad_host": "请求的主机名无效。",
        "bad_forwarded": "请求的代理头无效。",
        "bad_request": "请求无效。",
        "technical_details": "技术细节",
        "language": "语言",
        "logout_title": "退出登录",
        "logout_question": "确定要退出本网站吗？",
        "logout_everywhere_question": "确定要在所有设备和共享此登录的所有网站上退出登录吗？",
        "logout_button": "退出登录",
        "logout_everywhere_button": "全部退出",
        "cancel": "取消",
        "cross_site_logout": "此退出请求并非来自本网站，因此您仍处于登录状态。"
        "请使用本网站自己的退出按钮。",
        "hub_logout_title": "退出登录",
        "hub_logout_confirm": "确定退出钉钉登录服务吗？"
        "退出后，所有使用该服务的网站都需要重新登录。",
        "hub_logout_button": "退出登录",
        "hub_logged_out": "您已退出钉钉登录服务。",
        "hub_logout_continue": "继续",
        "unknown_client": "将您转到这里的网站未在本登录服务注册。",
        "redirect_not_registered": "将您转到这里的网站要求跳转到一个未为其注册的地址。",
    },
}

TEMPLATES = ("base.html", "login.html", "error.html", "logout.html")
_PACKAGE = jinja2.PackageLoader("dingmw", "templates")


@functools.cache
def environment(templates_dir: str | None = None) -> jinja2.Environment:
    """dingmw's templates, or `templates_dir`'s first (`DINGMW_TEMPLATES_DIR`).

    A site's template replaces dingmw's of the same name; dingmw's stay reachable as
    `dingmw/<name>`, so a site's `login.html` can `{% extends "dingmw/login.html" %}` and
    override a block. Every page is autoescaped.
    """
    loader: jinja2.BaseLoader = _PACKAGE
    if templates_dir:
        loader = jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(templates_dir),
                jinja2.PrefixLoader({"dingmw": _PACKAGE}),
                _PACKAGE,
            ]
        )
    return jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def renderer(templates_dir: str | None) -> Renderer:
    """`render` with a site's templates looked up first; a template that does not compile
    is a `ConfigError` now, at start-up, not a broken page later."""
    env = environment(templates_dir)
    if templates_dir:
        for name in TEMPLATES:
            try:
                env.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                raise ConfigError(
                    f"DINGMW_TEMPLATES_DIR: {exc.name or name} line {exc.lineno}: {exc.message}"
                ) from None

    def render_with(template: str, lang: str, context: Mapping[str, Any]) -> str:
        return _render(env, template, lang, context)

    return render_with


def message(lang: str, key: str, params: Mapping[str, str]) -> str:
    texts = MESSAGES.get(lang, MESSAGES["en"])
    template = texts.get(key) or texts["bad_request"]
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template


def render(template: str, lang: str, context: Mapping[str, Any]) -> str:
    """Render one of dingmw's pages in `lang` (`zh` or `en`); every value is autoescaped."""
    return _render(environment(), template, lang, context)


def _render(env: jinja2.Environment, template: str, lang: str, context: Mapping[str, Any]) -> str:
    texts = MESSAGES.get(lang, MESSAGES["en"])
    page = env.get_template(template)
    extra: dict[str, Any] = {}
    if "reason" in context:
        params = {str(k): str(v) for k, v in dict(context.get("params") or {}).items()}
        reason = str(context["reason"])
        if "logged_in_as" in params and f"{reason}_logged_in" in texts:
            reason = f"{reason}_logged_in"  # a replayed callback in a browser still logged in
        extra["message"] = message(lang, reason, params)
        extra["access_hint"] = (
            message(lang, "how_to_get_access", params) if "unionid" in params else ""
        )
    return page.render(t=texts, **context, **extra)
