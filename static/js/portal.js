// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // Copy buttons: <button data-copy="element-id">.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var el = document.getElementById(btn.getAttribute("data-copy"));
    if (!el) return;
    var text = el.value !== undefined ? el.value : el.textContent;
    if (navigator.clipboard) {
      navigator.clipboard.writeText(text).then(function () {
        var old = btn.textContent;
        btn.textContent = "Copied";
        setTimeout(function () { btn.textContent = old; }, 1500);
      });
    } else if (el.select) {
      el.select();
    }
  });
  // Download buttons: <button data-download="element-id" data-filename="x.pem" data-type="...">
  // save an element's text as a file, without another request to the server.
  var saved = false;
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-download]");
    if (!btn) return;
    var el = document.getElementById(btn.getAttribute("data-download"));
    if (!el) return;
    var blob = new Blob([el.value !== undefined ? el.value : el.textContent], { type: btn.getAttribute("data-type") || "text/plain" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = btn.getAttribute("data-filename") || "download.txt";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
    saved = true;
  });
  document.addEventListener("click", function (ev) {
    if (ev.target.closest("[data-copy]") || ev.target.closest("[data-handout-done]")) saved = true;
  });
  // A private key shown once: warn before leaving the page without saving it.
  window.addEventListener("beforeunload", function (ev) {
    if (document.querySelector("[data-handout]") && !saved) {
      ev.preventDefault();
      ev.returnValue = "";
    }
  });
  // Live expiry countdowns: <span data-countdown="unix seconds">.
  function countdowns() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Math.round(Number(el.getAttribute("data-countdown")) - now);
      if (!isFinite(left)) return;
      el.textContent = left > 0 ? Math.floor(left / 60) + " min " + (left % 60) + " s left" : "expired";
    });
  }
  countdowns();
  setInterval(countdowns, 1000);
  // htmx requests carry the anti-forgery token from the page's meta-free forms.
  document.addEventListener("htmx:configRequest", function (ev) {
    var input = document.querySelector("input[name=_csrf]");
    if (input) ev.detail.headers["X-CSRF-Token"] = input.value;
  });
  // htmx does not swap 4xx/5xx answers: show their text (the server sends a readable message
  // for htmx requests) in the layout's message region, or say that the portal did not answer.
  function showError(text) {
    var box = document.getElementById("htmx-error");
    if (!box) return;
    box.textContent = text || "The portal did not answer. Check your connection and reload the page.";
    box.hidden = false;
    box.focus();
  }
  document.addEventListener("htmx:responseError", function (ev) {
    var xhr = ev.detail.xhr;
    var text = xhr && xhr.responseText ? xhr.responseText.trim() : "";
    if (text.length > 500 || text.charAt(0) === "<") text = "";
    showError(text || (xhr ? "The portal answered " + xhr.status + ". Reload the page and try again." : ""));
  });
  document.addEventListener("htmx:sendError", function () { showError(""); });
  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("htmx-error");
    if (box) box.hidden = true;
  });
})();
