// Passkeys: registration on the security page, the second step of a sign-in, and the
// password-less sign-in. The server's options come as JSON with base64url byte strings;
// navigator.credentials wants ArrayBuffers, and the answer goes back as base64url again.
(function () {
  "use strict";

  function fromB64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buf) {
    if (!buf) return undefined;
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type, id: fromB64url(d.id) };
      if (d.transports) out.transports = d.transports;
      return out;
    });
  }

  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    pk.excludeCredentials = descriptors(pk.excludeCredentials);
    return o;
  }

  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    if (pk.allowCredentials) pk.allowCredentials = descriptors(pk.allowCredentials);
    return o;
  }

  function credentialJSON(cred) {
    var r = cred.response, out = {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64url(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64url(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = toB64url(r.authenticatorData);
      out.response.signature = toB64url(r.signature);
      out.response.userHandle = toB64url(r.userHandle);
    }
    return out;
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: body === undefined ? "{}" : JSON.stringify(body)
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (!resp.ok) throw new Error(data.error || "The portal refused the request (" + resp.status + "). Reload the page and try again.");
        return data;
      });
    });
  }

  function showError(form, msg) {
    var box = form.parentNode.querySelector("[data-passkey-error]") || document.querySelector("[data-passkey-error]");
    if (!box) return;
    box.textContent = msg;
    box.hidden = false;
  }

  function showCodes(codes, next) {
    var sect = document.querySelector("[data-recovery-codes]");
    var list = sect && sect.querySelector("[data-recovery-list]");
    if (!list) { window.location.assign(next); return; }
    codes.forEach(function (c) {
      var li = document.createElement("li"), code = document.createElement("code");
      code.textContent = c;
      code.setAttribute("data-testid", "recovery-code");
      li.appendChild(code);
      list.appendChild(li);
    });
    sect.hidden = false;
    sect.scrollIntoView();
  }

  function run(form) {
    var kind = form.getAttribute("data-passkey");
    var csrf = form.querySelector("input[name=_csrf]").value;
    var finish = form.getAttribute("data-finish-url");
    if (kind === "register") {
      var nameInput = form.querySelector("input[name=passkey-name]");
      var name = nameInput ? nameInput.value.trim() : "";
      if (!name) { showError(form, "Give the passkey a name, such as the device it is on."); return Promise.resolve(); }
      finish += (finish.indexOf("?") < 0 ? "?" : "&") + "name=" + encodeURIComponent(name);
    }
    if (!window.PublicKeyCredential || !navigator.credentials) {
      showError(form, "This browser does not support passkeys.");
      return Promise.resolve();
    }
    return post(form.getAttribute("data-options-url"), csrf).then(function (opts) {
      return kind === "register"
        ? navigator.credentials.create(creationOptions(opts))
        : navigator.credentials.get(requestOptions(opts));
    }).then(function (cred) {
      if (!cred) throw new Error("No passkey was chosen.");
      return post(finish, csrf, credentialJSON(cred));
    }).then(function (answer) {
      if (answer.recovery_codes && answer.recovery_codes.length) {
        showCodes(answer.recovery_codes, answer.redirect || "/");
        return;
      }
      window.location.assign(answer.redirect || "/");
    }).catch(function (err) {
      var msg = err && err.name === "NotAllowedError"
        ? "The passkey prompt was closed or timed out. Try again."
        : (err && err.message) || "The passkey did not work. Try again.";
      showError(form, msg);
    });
  }

  function init() {
    document.querySelectorAll("form[data-passkey]").forEach(function (form) {
      if (form.getAttribute("data-passkey-ready")) return;
      form.setAttribute("data-passkey-ready", "1");
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var btn = form.querySelector("button");
        if (btn) btn.disabled = true;
        run(form).then(function () { if (btn) btn.disabled = false; });
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
