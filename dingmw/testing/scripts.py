"""Stand-ins for DingTalk's browser scripts, behaving like the real ones (dingtalk-api.md §1.1,
§5, §6.1) but pointing at the fake's own origin.

The origin comes from ``document.currentScript.src`` (so a proxy/port change is followed),
falling back to the origin the script was requested from.
"""

from __future__ import annotations

import json

_ORIGIN = """
  var ORIGIN = %(origin)s;
  try {
    if (document.currentScript && document.currentScript.src) {
      ORIGIN = new URL(document.currentScript.src, window.location.href).origin;
    }
  } catch (e) {}
"""

# ddLogin.js: DDLogin({id, goto, style, width, height, href}); goto is used as given.
DD_LOGIN = """/* fake ddLogin.js (dingmw.testing) */
(function (window, document) {
%(origin_block)s
  function DDLogin(a) {
    var c = document.createElement("iframe");
    var d = ORIGIN + "/login/qrcode.htm?goto=" + a.goto;
    d += a.style ? "&style=" + encodeURIComponent(a.style) : "";
    d += a.href ? "&href=" + a.href : "";
    c.src = d;
    c.frameBorder = "0";
    c.allowTransparency = "true";
    c.scrolling = "no";
    c.width = a.width ? a.width + "px" : "365px";
    c.height = a.height ? a.height + "px" : "400px";
    var e = document.getElementById(a.id);
    e.innerHTML = "";
    e.appendChild(c);
  }
  window.DDLogin = DDLogin;
})(window, document);
"""

# ddlogin.js (h5-dingtalk-login): DTFrameLogin(frameParams, loginParams, successCbk, errorCbk).
DT_FRAME_LOGIN = """/* fake h5-dingtalk-login ddlogin.js (dingmw.testing) */
(function (window, document) {
%(origin_block)s
  function pick(url, name) {
    var m = new RegExp("[?&]" + name + "=([^&]+)").exec(url || "");
    return m ? m[1] : "";
  }
  function DTFrameLogin(frameParams, loginParams, successCbk, errorCbk) {
    var fail = function (msg) { if (typeof errorCbk === "function") { errorCbk(msg); } };
    var p = loginParams || {};
    if (!p.client_id || !p.redirect_uri || !p.response_type || !p.scope) {
      fail("Missing parameters");
      return;
    }
    var el = document.getElementById((frameParams || {}).id);
    if (!el) { fail("Element not found"); return; }
    if (!window.postMessage || !window.addEventListener) { fail("Browser not support"); return; }
    var src = ORIGIN + "/oauth2/auth?iframe=true&redirect_uri=" + p.redirect_uri +
      "&response_type=" + p.response_type + "&client_id=" + p.client_id + "&scope=" + p.scope;
    var extra = ["prompt", "state", "org_type", "corpId", "exclusiveLogin", "exclusiveCorpId"];
    for (var i = 0; i < extra.length; i++) {
      if (p[extra[i]] !== undefined && p[extra[i]] !== null && p[extra[i]] !== "") {
        src += "&" + extra[i] + "=" + p[extra[i]];
      }
    }
    var width = Math.max(Number(frameParams.width) || 300, 280);
    var height = Math.max(Number(frameParams.height) || 300, 280);
    var frame = document.createElement("iframe");
    frame.src = src;
    frame.frameBorder = "0";
    frame.scrolling = "no";
    frame.width = width + "px";
    frame.height = height + "px";
    el.innerHTML = "";
    el.appendChild(frame);
    var done = false;
    // As loose as the real widget, which tests /login.dingtalk.com/ against the origin
    // (unanchored, dots unescaped): here any origin mentioning this host passes, e.g.
    // another port on the same machine. Pages embedding the widget must guard themselves.
    var looseHost = new RegExp(new URL(ORIGIN).hostname);
    window.addEventListener("message", function (event) {
      if (!looseHost.test(event.origin)) { return; }
      var data = event.data;
      if (!data || typeof data !== "object" || done) { return; }
      if (data.success) {
        var authCode = pick(data.redirectUrl, "authCode");
        if (authCode) {
          done = true;
          if (typeof successCbk === "function") {
            successCbk({ redirectUrl: data.redirectUrl, authCode: authCode,
                         state: pick(data.redirectUrl, "state") });
          }
        } else {
          fail(pick(data.redirectUrl, "error"));
        }
      } else {
        fail(data.errorMsg);
      }
    });
  }
  window.DTFrameLogin = DTFrameLogin;
})(window, document);
"""

# dingtalk.open.js: window.dd with env.platform, ready, runtime.permission.requestAuthCode.
DINGTALK_OPEN = """/* fake dingtalk.open.js (dingmw.testing) */
(function (window) {
%(origin_block)s
  var ua = (window.navigator && window.navigator.userAgent) || "";
  var inClient = /DingTalk/i.test(ua);
  var platform = "notInDingTalk";
  if (inClient) {
    platform = /iPhone|iPad|iPod/i.test(ua) ? "ios" : (/Android/i.test(ua) ? "android" : "pc");
  }
  function requestCode(corpId, ok, ko) {
    if (!inClient) { ko({ errorCode: "3", errorMessage: "not in DingTalk client" }); return; }
    window.fetch(ORIGIN + "/fake/jsapi/requestAuthCode", {
      method: "POST",
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body: JSON.stringify({ corpId: corpId || "" })
    }).then(function (r) { return r.json(); }).then(function (d) {
      if (d && d.code) { ok(d.code); } else {
        ko({ errorCode: (d && d.errorCode) || "-1",
             errorMessage: (d && d.errorMessage) || "requestAuthCode failed" });
      }
    }, function (e) { ko({ errorCode: "-1", errorMessage: String(e) }); });
  }
  var noop = function () {};
  var dd = {
    version: "fake",
    env: { platform: platform },
    ready: function (cb) { window.setTimeout(cb, 0); },
    error: function (cb) { dd._error = cb; },
    config: noop,
    runtime: { permission: { requestAuthCode: function (o) {
      o = o || {};
      requestCode(o.corpId,
        function (code) { (o.onSuccess || noop)({ code: code }); },
        function (err) { (o.onFail || noop)(err); });
    } } },
    getAuthCode: function (o) {
      o = o || {};
      requestCode(o.corpId,
        function (code) { (o.success || o.onSuccess || noop)({ authCode: code, code: code }); },
        function (err) { (o.fail || o.onFail || noop)(err); });
    }
  };
  window.dd = dd;
})(window);
"""


def render(template: str, origin: str) -> str:
    block = _ORIGIN % {"origin": json.dumps(origin).replace("<", "\\u003c")}
    return template % {"origin_block": block}
