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
  // htmx requests carry the anti-forgery token from the page's meta-free forms.
  document.addEventListener("htmx:configRequest", function (ev) {
    var input = document.querySelector("input[name=_csrf]");
    if (input) ev.detail.headers["X-CSRF-Token"] = input.value;
  });
})();
