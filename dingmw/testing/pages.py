"""Browser-facing pages: the authorize pages (oapi ``/connect/*``, login ``/oauth2/auth``),
the ddLogin QR frame, the widget scripts and the JSAPI stand-in's code endpoint.

Every user button has ``class="fake-dingtalk-user"`` and ``data-unionid``; the deny button
has ``class="fake-dingtalk-deny"``. Fake-only endpoints (``/connect/fake-login``,
``/login/fake-scan``, ``/oauth2/fake-confirm``, ``/fake/jsapi/requestAuthCode``) stand in
for what a person does in the DingTalk app; everything else follows dingtalk-api.md §1, §4.1.
Validation failures render a page with HTTP 400 (the real status is UNCONFIRMED).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape
from urllib.parse import parse_qsl, urlencode, urlsplit

from . import scripts
from .directory import FakeApp, FakeUser
from .oapi import jsapi_code_for
from .state import CODE_TTL, World
from .wire import Req, Resp, html, javascript, page_json, redirect

Handler = Callable[[World, Req], Resp]

_STYLE = """
body{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:16px;
color:#171a1d;background:#fff}h1{font-size:18px;margin:0 0 8px}p{color:#555;font-size:13px}
.qr{width:210px;height:210px;margin:8px auto;border:1px solid #ddd;display:flex;
align-items:center;justify-content:center;background:repeating-linear-gradient(45deg,#f4f4f4,
#f4f4f4 10px,#e9e9e9 10px,#e9e9e9 20px);font-size:12px;color:#888}
button{display:block;width:100%;max-width:320px;margin:6px auto;padding:8px;border:0;
border-radius:6px;background:#0089ff;color:#fff;font-size:14px;cursor:pointer}
button.fake-dingtalk-deny{background:#eee;color:#333}.err{color:#c00}
body.frame{padding:6px}body.frame h1{display:none}body.frame p{margin:2px 0;font-size:12px}
body.frame .qr{width:96px;height:96px;margin:4px auto}
body.frame button{padding:4px;margin:3px auto;font-size:12px}
"""


def _page(title: str, body: str, *, status: int = 200, attrs: str = "") -> Resp:
    doc = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body{attrs}><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return html(doc, status=status)


def error_page(message: str, status: int = 400) -> Resp:
    body = f'<p class="err" id="fake-dingtalk-error">{escape(message)}</p>'
    return _page("钉钉 (fake)", body, status=status)


def _user_buttons(users: Iterable[FakeUser], *, submit: bool, label: str) -> str:
    kind = "submit" if submit else "button"
    out = []
    for user in users:
        u = escape(user.unionid)
        name = escape(label + user.nick)
        attrs = f'name="unionid" value="{u}" ' if submit else ""
        out.append(
            f'<button type="{kind}" {attrs}class="fake-dingtalk-user" data-unionid="{u}">'
            f"{name}</button>"
        )
    return "".join(out)


def _deny_button(*, submit: bool) -> str:
    if submit:
        return (
            '<button type="submit" name="deny" value="1" class="fake-dingtalk-deny">'
            "拒绝授权</button>"
        )
    return '<button type="button" class="fake-dingtalk-deny">拒绝授权</button>'


def with_query(uri: str, params: list[tuple[str, str]]) -> str:
    base, hash_mark, fragment = uri.partition("#")
    sep = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        sep = ""
    return base + sep + urlencode(params) + hash_mark + fragment


# --- validation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ask:
    app: FakeApp
    redirect_uri: str
    state: str | None
    scope: str
    query: dict[str, str]


def _redirect_ok(app: FakeApp, uri: str) -> str | None:
    """None when fine, else the error text."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "redirect_uri 不合法"
    if not app.allows_redirect_host(parts.hostname):
        return "无权限访问: redirect_uri 的域名与应用配置的回调域名不一致"
    return None


def validate_sns(world: World, q: dict[str, str]) -> Ask | Resp:
    app = world.app(q.get("appid"))
    if app is None:
        return error_page("无效的appid")
    if q.get("response_type") != "code":
        return error_page("response_type 必须为 code")
    scope = q.get("scope", "")
    if scope not in ("snsapi_login", "snsapi_auth"):
        return error_page("scope 不合法")
    uri = q.get("redirect_uri", "")
    if not uri:
        return error_page("缺少 redirect_uri")
    problem = _redirect_ok(app, uri)
    if problem:
        return error_page(problem)
    return Ask(app=app, redirect_uri=uri, state=q.get("state"), scope=scope, query=q)


def _scopes(scope: str) -> set[str]:
    return {s for s in scope.replace(",", " ").split() if s}


def validate_oauth2(world: World, q: dict[str, str]) -> Ask | Resp:
    uri = q.get("redirect_uri", "")
    if not uri:
        return error_page("缺少参数 redirect_uri")
    app = world.app(q.get("client_id"))
    if app is None:
        return error_page("无效的client_id")
    if q.get("response_type") != "code":
        return error_page("response_type 必须为 code")
    if "openid" not in _scopes(q.get("scope", "")):
        return error_page("scope 不合法 (需要 openid)")
    if "consent" not in q.get("prompt", "").split():
        return error_page("缺少参数 prompt=consent")
    problem = _redirect_ok(app, uri)
    if problem:
        return error_page(problem)
    return Ask(app=app, redirect_uri=uri, state=q.get("state"), scope=q["scope"], query=q)


def _state_params(ask: Ask) -> list[tuple[str, str]]:
    return [] if ask.state is None else [("state", ask.state)]


def _sns_success(world: World, ask: Ask, user: FakeUser) -> Resp:
    code = world.ledger.mint(
        "tmp_auth_code", ttl=CODE_TTL, app_key=ask.app.app_key, unionid=user.unionid
    )
    return redirect(with_query(ask.redirect_uri, [("code", code.value), *_state_params(ask)]))


def _denied_url(ask: Ask) -> str:
    # oauth2: "redirect_uri?error=<reason>&state=" (§4.1). For sns the refusal is UNCONFIRMED;
    # the fake uses the same shape.
    return with_query(ask.redirect_uri, [("error", "access_denied"), *_state_params(ask)])


def _parse(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        out.setdefault(key, value)
    return out


# --- legacy sns pages -----------------------------------------------------------------------


def _account_page(world: World, req: Req, ask: Ask, title: str, hint: str) -> Resp:
    body = (
        f"<p>{escape(hint)}</p><p>应用: {escape(ask.app.name)}</p>"
        '<form method="post" action="/connect/fake-login">'
        f'<input type="hidden" name="q" value="{escape(req.raw_query)}">'
        f"{_user_buttons(world.users.values(), submit=True, label='扫码登录 as ')}"
        f"{_deny_button(submit=True)}</form>"
    )
    return _page(title, body)


def sns_authorize(world: World, req: Req) -> Resp:
    ask = validate_sns(world, req.query)
    if isinstance(ask, Resp):
        return ask
    tmp = ask.query.get("loginTmpCode")
    if tmp is not None:
        grant = world.ledger.take("loginTmpCode", tmp)
        user = world.user(grant.unionid) if grant else None
        if grant is None or user is None or grant.app_key != ask.app.app_key:
            return error_page("二维码已失效 (loginTmpCode 无效或已使用)")
        return _sns_success(world, ask, user)
    agent = req.headers.get("user-agent", "")
    client = world.user(world.client_user)
    if ask.scope == "snsapi_auth" and "dingtalk" in agent.lower() and client is not None:
        return _sns_success(world, ask, client)  # silent in-client login (§1.2)
    return _account_page(world, req, ask, "使用钉钉账号登录 (fake)", "选择要登录的钉钉账号")


def qrconnect(world: World, req: Req) -> Resp:
    ask = validate_sns(world, req.query)
    if isinstance(ask, Resp):
        return ask
    return _account_page(world, req, ask, "钉钉扫码登录 (fake)", "请使用钉钉扫描二维码登录")


def fake_login(world: World, req: Req) -> Resp:
    form = req.form()
    ask = validate_sns(world, _parse(form.get("q", "")))
    if isinstance(ask, Resp):
        return ask
    if form.get("deny"):
        return redirect(_denied_url(ask))
    user = world.user(form.get("unionid"))
    if user is None:
        return error_page("未知用户")
    return _sns_success(world, ask, user)


# --- ddLogin QR frame -----------------------------------------------------------------------

_QR_SCRIPT = """<script>
(function () {
  var goto = document.body.getAttribute("data-goto");
  var buttons = document.querySelectorAll("button.fake-dingtalk-user");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function (ev) {
      var body = "goto=" + encodeURIComponent(goto) +
        "&unionid=" + encodeURIComponent(ev.currentTarget.getAttribute("data-unionid"));
      fetch("/login/fake-scan", {method: "POST", body: body,
        headers: {"Content-Type": "application/x-www-form-urlencoded"}})
        .then(function (r) { return r.json(); })
        .then(function (d) {
          if (d.loginTmpCode) {
            document.getElementById("status").textContent = "已扫码，请在手机上确认";
            window.parent.postMessage(d.loginTmpCode, "*");
          } else {
            document.getElementById("status").textContent = d.errorMsg || "error";
          }
        });
    });
  }
})();
</script>"""


def _goto_app(world: World, goto: str) -> FakeApp | None:
    parts = urlsplit(goto)
    return world.app(_parse(parts.query).get("appid"))


def qrcode_frame(world: World, req: Req) -> Resp:
    goto = req.query.get("goto", "")
    if _goto_app(world, goto) is None:
        return error_page("goto 参数不合法")
    body = (
        '<div class="qr">QR (fake)</div><p id="status">请使用钉钉扫描二维码</p>'
        f"{_user_buttons(world.users.values(), submit=False, label='扫码登录 as ')}{_QR_SCRIPT}"
    )
    # Compact: ddLogin.js sizes its frame 365×400 by default.
    return _page("钉钉扫码 (fake)", body, attrs=f' class="frame" data-goto="{escape(goto)}"')


def fake_scan(world: World, req: Req) -> Resp:
    form = req.form()
    app = _goto_app(world, form.get("goto", ""))
    user = world.user(form.get("unionid"))
    if app is None or user is None:
        return page_json({"errorMsg": "goto 或 unionid 不合法"}, status=400)
    grant = world.ledger.mint(
        "loginTmpCode", ttl=CODE_TTL, app_key=app.app_key, unionid=user.unionid
    )
    return page_json({"loginTmpCode": grant.value})


# --- login.dingtalk.com/oauth2/auth ---------------------------------------------------------

_IFRAME_SCRIPT = """<script>
(function () {
  var q = document.body.getAttribute("data-q");
  function send(extra) {
    fetch("/oauth2/fake-confirm", {method: "POST", body: "q=" + encodeURIComponent(q) + extra,
      headers: {"Content-Type": "application/x-www-form-urlencoded"}})
      .then(function (r) { return r.json(); })
      .then(function (d) { window.parent.postMessage(d, "*"); });
  }
  var buttons = document.querySelectorAll("button.fake-dingtalk-user");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function (ev) {
      send("&unionid=" + encodeURIComponent(ev.currentTarget.getAttribute("data-unionid")));
    });
  }
  document.querySelector("button.fake-dingtalk-deny").addEventListener("click", function () {
    send("&deny=1");
  });
})();
</script>"""


def _iframe(q: dict[str, str]) -> bool:
    return q.get("iframe", "").lower() == "true"


def oauth2_auth(world: World, req: Req) -> Resp:
    ask = validate_oauth2(world, req.query)
    if isinstance(ask, Resp):
        return ask
    head = f"<p>{escape(ask.app.name)} 申请使用你的钉钉账号信息登录</p>"
    if _iframe(ask.query):
        body = (
            head
            + '<div class="qr">QR (fake)</div>'
            + _user_buttons(world.users.values(), submit=False, label="扫码登录 as ")
            + _deny_button(submit=False)
            + _IFRAME_SCRIPT
        )
        # Compact: DTFrameLogin's frame is 300×300 by default.
        attrs = f' class="frame" data-q="{escape(req.raw_query)}"'
        return _page("钉钉登录 (fake)", body, attrs=attrs)
    body = (
        head + '<form method="post" action="/oauth2/fake-confirm">'
        f'<input type="hidden" name="q" value="{escape(req.raw_query)}">'
        + _user_buttons(world.users.values(), submit=True, label="扫码登录 as ")
        + _deny_button(submit=True)
        + "</form>"
    )
    return _page("钉钉登录 (fake)", body)


def _corp_for(ask: Ask, user: FakeUser) -> str | None:
    if "corpid" not in _scopes(ask.scope):
        return None
    wanted = [ask.query.get("corpId"), ask.app.corp_id]
    for corp in wanted:
        if corp and user.userid_in(corp) is not None:
            return corp
    return user.corp_ids[0] if user.corp_ids else None


def oauth2_confirm(world: World, req: Req) -> Resp:
    form = req.form()
    ask = validate_oauth2(world, _parse(form.get("q", "")))
    if isinstance(ask, Resp):
        return ask
    in_frame = _iframe(ask.query)
    if form.get("deny"):
        if in_frame:
            return page_json({"success": False, "errorMsg": "用户拒绝授权"})
        return redirect(_denied_url(ask))
    user = world.user(form.get("unionid"))
    if user is None:
        return (
            page_json({"success": False, "errorMsg": "未知用户"})
            if in_frame
            else error_page("未知用户")
        )
    grant = world.ledger.mint(
        "authCode",
        ttl=CODE_TTL,
        app_key=ask.app.app_key,
        unionid=user.unionid,
        corp_id=_corp_for(ask, user),
        extra={"redirect_uri": ask.redirect_uri, "scope": ask.scope},
    )
    params = [("authCode", grant.value)]
    if world.oauth2_also_code:
        params.append(("code", grant.value))
    url = with_query(ask.redirect_uri, [*params, *_state_params(ask)])
    if in_frame:
        return page_json({"success": True, "redirectUrl": url})
    return redirect(url)


# --- scripts and JSAPI ----------------------------------------------------------------------


def _script(template: str) -> Handler:
    def handler(world: World, req: Req) -> Resp:
        return javascript(scripts.render(template, req.origin))

    return handler


_CORS = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "POST, OPTIONS"),
    ("access-control-allow-headers", "Content-Type"),
    ("access-control-max-age", "600"),
]


def jsapi_request_auth_code(world: World, req: Req) -> Resp:
    if req.method == "OPTIONS":
        return Resp(status=204, headers=list(_CORS))
    try:
        data = json.loads(req.body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        data = {}
    corp_id = data.get("corpId") if isinstance(data, dict) else None
    user = world.user(world.client_user)
    if not isinstance(corp_id, str) or not corp_id:
        resp = page_json({"errorCode": "7", "errorMessage": "corpId 不能为空"})
    elif user is None:
        resp = page_json({"errorCode": "-1", "errorMessage": "没有登录钉钉客户端的用户"})
    else:
        resp = page_json({"code": jsapi_code_for(world, user.unionid, corp_id)})
    resp.headers.extend(_CORS)
    return resp


def index(world: World, req: Req) -> Resp:
    users = "".join(
        f"<li>{escape(u.nick)} — <code>{escape(u.unionid)}</code></li>"
        for u in world.users.values()
    )
    apps = "".join(f"<li><code>{escape(a.app_key)}</code></li>" for a in world.apps.values())
    return _page(
        "Fake DingTalk (dingmw.testing)",
        f"<p>Serves oapi, api and login paths of DingTalk on one origin.</p>"
        f"<p>Apps:</p><ul>{apps}</ul><p>Users:</p><ul>{users}</ul>",
    )


# path -> (methods, handler)
ROUTES: dict[str, tuple[tuple[str, ...], Handler]] = {
    "/": (("GET",), index),
    "/connect/oauth2/sns_authorize": (("GET",), sns_authorize),
    "/connect/qrconnect": (("GET",), qrconnect),
    "/connect/fake-login": (("POST",), fake_login),
    "/login/qrcode.htm": (("GET",), qrcode_frame),
    "/login/fake-scan": (("POST",), fake_scan),
    "/oauth2/auth": (("GET",), oauth2_auth),
    "/oauth2/fake-confirm": (("POST",), oauth2_confirm),
    "/dinglogin/ddLogin.js": (("GET",), _script(scripts.DD_LOGIN)),
    "/h5-dingtalk-login/ddlogin.js": (("GET",), _script(scripts.DT_FRAME_LOGIN)),
    "/dingtalk-jsapi/dingtalk.open.js": (("GET",), _script(scripts.DINGTALK_OPEN)),
    "/fake/jsapi/requestAuthCode": (("POST", "OPTIONS"), jsapi_request_auth_code),
}


def not_found(path: str) -> Resp:
    return error_page(f"404 Not Found: {path}", status=404)
