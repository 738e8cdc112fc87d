(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("dingmw-config").textContent);
  var statusBox = document.getElementById("dingmw-status");
  var done = false;

  function go(url) {
    if (done) { return; }
    done = true;
    window.location.assign(url);
  }

  // The callback URL with `query` added (the hub's callback already has `?forward_url=`).
  function callback(query) {
    return cfg.redirect_uri + (cfg.redirect_uri.indexOf("?") < 0 ? "?" : "&") + query;
  }

  function show(text) {
    statusBox.textContent = text;
    statusBox.hidden = false;
  }

  function startQr() {
    if (cfg.widget === "ddlogin") {
      // Legacy QR (sns, bycode): the frame posts a plain-string loginTmpCode.
      // Only messages from the configured login origin are accepted.
      if (typeof window.DDLogin !== "function") { show(statusBox.dataset.widgetMissing); return; }
      window.addEventListener("message", function (event) {
        if (event.origin !== cfg.login_origin) { return; }
        var code = event.data;
        if (typeof code !== "string" || !/^[A-Za-z0-9_.~\-]{1,512}$/.test(code)) { return; }
        go(cfg.authorize_url + "&loginTmpCode=" + encodeURIComponent(code));
      }, false);
      window.DDLogin({
        id: "dingmw-qr",
        goto: encodeURIComponent(cfg.authorize_url),
        style: "border:none;background-color:#FFFFFF;",
        width: "365",
        height: "400"
      });
    } else if (cfg.widget === "dtframe") {
      // Current QR (oauth2): DTFrameLogin checks the frame's origin and hands
      // over the authCode; the callback URL is built here, never taken as given.
      if (typeof window.DTFrameLogin !== "function") { show(statusBox.dataset.widgetMissing); return; }
      // The widget's own origin check is a loose pattern match (/login.dingtalk.com/), so
      // messages from any other origin are stopped here, before the widget sees them.
      window.addEventListener("message", function (event) {
        if (event.origin !== cfg.login_origin) { event.stopImmediatePropagation(); }
      }, true);
      window.DTFrameLogin(
        { id: "dingmw-qr", width: 300, height: 300 },
        {
          redirect_uri: encodeURIComponent(cfg.redirect_uri),
          client_id: cfg.client_id,
          scope: cfg.scope,
          response_type: "code",
          prompt: "consent",
          state: cfg.state
        },
        function (result) {
          if (!result || typeof result.authCode !== "string" || !result.authCode) { return; }
          var code = result.authCode;
          try { code = decodeURIComponent(code); } catch (e) { /* keep it as given */ }
          go(callback("authCode=" + encodeURIComponent(code) +
                      "&state=" + encodeURIComponent(cfg.state)));
        },
        function (error) {
          var text = typeof error === "string" ? error : (error && error.errorMsg) || "";
          show(statusBox.dataset.widgetFailed + " " + text);
        }
      );
    }
  }

  // Inside the DingTalk client (DINGMW_CORP_ID set): ask the JSAPI for a
  // one-time code and log in silently; on any failure, show the QR instead.
  var dd = window.dd;
  if (cfg.in_client && dd && dd.env && dd.env.platform !== "notInDingTalk") {
    var hint = document.getElementById("dingmw-hint");
    hint.textContent = hint.dataset.inClient;
    var fellBack = false;
    var fallBack = function () {
      if (fellBack || done) { return; }
      fellBack = true;
      hint.textContent = "";
      startQr();
    };
    var timer = window.setTimeout(fallBack, 8000);
    dd.ready(function () {
      dd.runtime.permission.requestAuthCode({
        corpId: cfg.in_client.corp_id,
        onSuccess: function (result) {
          window.clearTimeout(timer);
          if (result && typeof result.code === "string" && result.code && !fellBack) {
            go(callback("jsapi_code=" + encodeURIComponent(result.code) +
                        "&state=" + encodeURIComponent(cfg.state)));
          } else {
            fallBack();
          }
        },
        onFail: function () { window.clearTimeout(timer); fallBack(); }
      });
    });
    if (typeof dd.error === "function") { dd.error(function () { fallBack(); }); }
  } else {
    startQr();
  }
})();
