// Vigie console: the page works without this script; with it, the parts marked data-live
// refresh every few seconds, and forms marked data-inline are sent without leaving the page.
(function () {
  "use strict";
  var status = function (text) {
    var el = document.getElementById("live-status");
    if (el) { el.textContent = text; }
  };
  var swap = function (html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    document.querySelectorAll("[data-live]").forEach(function (el) {
      // Never replace what someone is typing in.
      if (el.contains(document.activeElement) && document.activeElement !== document.body) { return; }
      var fresh = doc.getElementById(el.id);
      if (fresh) { el.replaceWith(document.importNode(fresh, true)); }
    });
  };
  var toLogin = function (response) {
    if (response.redirected && new URL(response.url).pathname === "/connexion") {
      window.location.assign(response.url);
      return true;
    }
    return false;
  };
  var refresh = function () {
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Vigie-Live": "1" } })
      .then(function (response) {
        if (toLogin(response) || !response.ok) { return null; }
        return response.text();
      })
      .then(function (html) {
        if (html) {
          swap(html);
          status("Mis à jour à " + new Date().toLocaleTimeString("fr-FR"));
        }
      })
      .catch(function () { status("Collecteur injoignable, nouvel essai bientôt."); });
  };
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-inline]")) { return; }
    event.preventDefault();
    var button = event.submitter;
    var action = (button && button.getAttribute("formaction")) || form.getAttribute("action");
    var body = new URLSearchParams(new FormData(form));
    if (document.activeElement) { document.activeElement.blur(); }
    fetch(action, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        if (toLogin(response)) { return; }
        return response.text().then(function (html) {
          if (!response.ok) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var message = doc.querySelector(".message");
            status(message ? message.textContent : "Action refusée.");
            return;
          }
          swap(html);
          status("Enregistré à " + new Date().toLocaleTimeString("fr-FR"));
        });
      })
      .catch(function () { status("Collecteur injoignable : rien n'a été envoyé."); });
  });
  var every = Number(document.body.getAttribute("data-refresh")) || 10;
  window.setInterval(refresh, every * 1000);
})();
