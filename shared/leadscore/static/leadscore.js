/*! leadscore.js - first-party website tracking for leadscore. Sends nothing before
 consent (unless data-consent="granted"), nothing with Do Not Track or Global Privacy
 Control, and only to the server it was loaded from. */
(function (w, d) {
  "use strict";
  var s = d.currentScript, o = (s && s.dataset) || {}, n = w.navigator, l = w.location;
  var base = o.api || (s ? s.src.replace(/\/[^\/?#]*([?#].*)?$/, "") : "");
  var ck = o.cookie || "ls_aid", days = +(o.days || 365), last = null;
  var blocked = n.doNotTrack == "1" || w.doNotTrack == "1" || n.globalPrivacyControl === true;
  function get(k) {
    var m = d.cookie.match(new RegExp("(?:^|; )" + k + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function set(k, v, secs) {
    d.cookie = k + "=" + encodeURIComponent(v) + "; Max-Age=" + secs + "; Path=/; SameSite=Lax" +
      (l.protocol == "https:" ? "; Secure" : "");
  }
  var granted = o.consent == "granted" || get("ls_consent") == "1";
  function ok() { return granted && !blocked; }
  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0; return (c == "x" ? r : r & 3 | 8).toString(16);
    });
  }
  function aid() {
    var id = get(ck);
    if (!id) id = uuid();
    set(ck, id, days * 86400);
    return id;
  }
  function send(type, body) {
    if (!ok()) return false;
    var t = new Date().toISOString();
    body.anonymousId = aid(); body.messageId = uuid(); body.timestamp = t; body.sentAt = t;
    body.writeKey = o.key;
    body.context = {library: {name: "leadscore.js", version: "1"},
      page: {path: l.pathname, url: l.href, title: d.title, referrer: d.referrer}};
    var url = base + "/v1/" + type, data = JSON.stringify(body);
    try {
      if (w.fetch) {
        fetch(url, {method: "POST", body: data, keepalive: true, credentials: "omit",
          headers: {"Content-Type": "text/plain"}});
        return true;
      }
    } catch (e) { /* fall back to a beacon */ }
    return !!(n.sendBeacon && n.sendBeacon(url, new Blob([data], {type: "text/plain"})));
  }
  function page() {
    if (!ok() || last === l.pathname + l.search) return false;
    last = l.pathname + l.search;
    return send("p", {properties: {path: l.pathname, url: l.href, title: d.title,
      referrer: d.referrer}});
  }
  var api = {
    consent: function (yes) {
      granted = !!yes;
      if (granted) { set("ls_consent", "1", days * 86400); page(); }
      else { set("ls_consent", "", 0); set(ck, "", 0); last = null; }
      return granted;
    },
    track: function (name, props) { return send("t", {event: name, properties: props || {}}); },
    identify: function (email, traits) {
      traits = traits || {}; traits.email = email;
      return send("i", {traits: traits});
    },
    page: page,
    anonymousId: function () { return ok() ? aid() : null; }
  };
  var queued = w.leadscore;
  w.leadscore = api;
  if (queued && queued.length) for (var i = 0; i < queued.length; i++) {
    api[queued[i][0]].apply(api, [].slice.call(queued[i], 1));
  }
  var push = history.pushState;
  history.pushState = function () {
    var r = push.apply(this, arguments); page(); return r;
  };
  w.addEventListener("popstate", page);
  d.addEventListener("submit", function (e) {
    var f = e.target;
    if (!ok() || !f || !f.elements) return;
    var input = f.elements.ls_anonymous_id;
    if (!input) {
      input = d.createElement("input"); input.type = "hidden"; input.name = "ls_anonymous_id";
      f.appendChild(input);
    }
    input.value = aid();
  }, true);
  page();
})(window, document);
