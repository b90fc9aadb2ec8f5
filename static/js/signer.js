// In-browser grant signer. Signs a JWT grant the server prepared with a private key file the
// person picks, using WebCrypto; only the compact JWS leaves the page, the key never does.
//
// Markup (any number per page):
//   <div data-signer
//        data-signer-header='{"alg":"RS256","kid":"..."}'   the JWS header, as JSON
//        data-signer-claims='{"aud":...,"iat":...,"exp":...}' the claims, as JSON
//        data-signer-n="..."            optional: the key's modulus (base64url), to refuse a wrong file
//        data-signer-form="form-id"     the form whose input[name=grant] receives the grant
//        data-signer-submit>            optional: submit that form once signed
//     <input type="file" id="signer-file">   no name attribute: it is never part of a form post
//     <button type="button" id="signer-sign">
//     <p data-signer-status></p>             optional: what happens, in words
//     <pre data-signer-view="claims"></pre>  optional: the claims as signed
//   </div>
// Inside one data-signer element the file input, button and output are found by their role
// (input[type=file], button, input[name=grant]); the ids are for pages and tests.
//
// iat and exp move on by the time the page has been open (measured with the monotonic clock,
// not the machine's wall clock), since Maskinporten wants iat within 10 seconds of now.
(function () {
  "use strict";
  var HASH = { RS256: "SHA-256", RS384: "SHA-384", RS512: "SHA-512" };
  var MAX_FILE = 64 * 1024;
  var loadedAt = performance.now();

  function b64url(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function b64urlText(text) {
    return b64url(new TextEncoder().encode(text));
  }

  function fromBase64(s) {
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  // readKey turns a file's text into something WebCrypto imports: PKCS#8 PEM, a private JWK,
  // or a JWK set holding the key with the wanted kid.
  function readKey(text, kid) {
    text = text.trim();
    if (text.charAt(0) === "{") {
      var j;
      try {
        j = JSON.parse(text);
      } catch (e) {
        throw new Error("The file is neither a PEM private key nor valid JSON.");
      }
      if (Array.isArray(j.keys)) {
        var match = j.keys.filter(function (k) { return k && k.kid === kid; });
        if (match.length === 0 && j.keys.length === 1) match = j.keys;
        if (match.length !== 1) throw new Error("The JWK set has no key with kid " + kid + ".");
        j = match[0];
      }
      if (!j || j.kty !== "RSA" || !j.d) {
        throw new Error("The JWK is not an RSA private key: it has no \"d\". Pick the private key, not the public one.");
      }
      if (!j.p || !j.q || !j.dp || !j.dq || !j.qi) {
        throw new Error("The JWK lacks p, q, dp, dq or qi, which the browser needs to sign. Use the PKCS#8 PEM file instead.");
      }
      // Only the members WebCrypto needs: an alg, use or key_ops in the file must not get in the way.
      return { format: "jwk", data: { kty: "RSA", n: j.n, e: j.e, d: j.d, p: j.p, q: j.q, dp: j.dp, dq: j.dq, qi: j.qi } };
    }
    if (text.indexOf("-----BEGIN ENCRYPTED PRIVATE KEY-----") >= 0) {
      throw new Error("The key is encrypted with a passphrase: decrypt it first, e.g. openssl pkcs8 -in key.pem -out plain.pem.");
    }
    if (text.indexOf("-----BEGIN RSA PRIVATE KEY-----") >= 0) {
      throw new Error("This is a PKCS#1 key; convert it to PKCS#8 first: openssl pkcs8 -topk8 -nocrypt -in key.pem -out key8.pem.");
    }
    var m = /-----BEGIN PRIVATE KEY-----([\s\S]*?)-----END PRIVATE KEY-----/.exec(text);
    if (!m) {
      throw new Error("The file holds no private key: pick a PKCS#8 PEM file (-----BEGIN PRIVATE KEY-----) or a private JWK.");
    }
    var der;
    try {
      der = fromBase64(m[1].replace(/\s+/g, ""));
    } catch (e) {
      throw new Error("The PEM block is not valid base64.");
    }
    return { format: "pkcs8", data: der.buffer };
  }

  function setup(root) {
    var fileInput = root.querySelector("input[type=file]");
    var button = root.querySelector("button");
    var status = root.querySelector("[data-signer-status]");
    var claimsView = root.querySelector("[data-signer-view=claims]");
    var form = document.getElementById(root.getAttribute("data-signer-form") || "");
    var output = (form || root).querySelector("input[name=grant]");
    if (!fileInput || !button || !output) return;

    function say(msg, bad) {
      if (!status) return;
      status.textContent = msg;
      status.setAttribute("data-color", bad ? "danger" : "info");
    }

    if (!window.crypto || !window.crypto.subtle) {
      button.disabled = true;
      say("This browser signs only on a secure page (https, or localhost). Sign the grant elsewhere and paste it below.", true);
      return;
    }

    // A pasted grant replaces one signed here.
    if (form) {
      form.addEventListener("input", function (ev) {
        if (ev.target && ev.target.name === "grant_pasted") output.value = "";
      });
    }

    button.addEventListener("click", function () {
      var file = fileInput.files && fileInput.files[0];
      if (!file) {
        say("Pick the private key file first.", true);
        return;
      }
      if (file.size > MAX_FILE) {
        say("That file is too large to be a private key.", true);
        return;
      }
      var header, claims;
      try {
        header = JSON.parse(root.getAttribute("data-signer-header"));
        claims = JSON.parse(root.getAttribute("data-signer-claims"));
      } catch (e) {
        say("The page's grant could not be read: reload the page.", true);
        return;
      }
      var hash = HASH[header.alg];
      if (!hash) {
        say("The grant's algorithm " + header.alg + " cannot be signed here.", true);
        return;
      }
      var elapsed = Math.floor((performance.now() - loadedAt) / 1000);
      if (typeof claims.iat === "number" && typeof claims.exp === "number") {
        var life = claims.exp - claims.iat;
        claims.iat += elapsed;
        claims.exp = claims.iat + life;
      }
      var algorithm = { name: "RSASSA-PKCS1-v1_5", hash: hash };
      var wantN = root.getAttribute("data-signer-n") || "";
      button.disabled = true;
      say("Signing…", false);
      file.text().then(function (text) {
        var k = readKey(text, header.kid);
        text = null;
        // Extractable only so its public modulus can be compared with the key on the client;
        // the key object stays in this function and is dropped after one signature.
        return crypto.subtle.importKey(k.format, k.data, algorithm, true, ["sign"]);
      }).then(function (key) {
        return crypto.subtle.exportKey("jwk", key).then(function (jwk) {
          if (wantN && jwk.n !== wantN) {
            throw new Error("This private key does not belong to " + header.kid + ": pick the file of that key.");
          }
          var input = b64urlText(JSON.stringify(header)) + "." + b64urlText(JSON.stringify(claims));
          return crypto.subtle.sign(algorithm, key, new TextEncoder().encode(input)).then(function (sig) {
            return input + "." + b64url(new Uint8Array(sig));
          });
        });
      }).then(function (jws) {
        fileInput.value = "";
        output.value = jws;
        if (claimsView) claimsView.textContent = JSON.stringify(claims, null, 2);
        if (form && root.hasAttribute("data-signer-submit")) {
          say("Signed. Sending the grant (only the grant) to the portal…", false);
          if (form.requestSubmit) form.requestSubmit(); else form.submit();
        } else {
          say("Signed: the grant is ready.", false);
          button.disabled = false;
        }
      }).catch(function (err) {
        button.disabled = false;
        var msg = err && err.message ? err.message : String(err);
        if (err && (err.name === "DataError" || err.name === "NotSupportedError")) {
          msg = "The browser could not use this key (" + err.name + "): pick an unencrypted RSA private key as PKCS#8 PEM or JWK.";
        }
        say(msg, true);
      });
    });
  }

  function init() {
    var roots = document.querySelectorAll("[data-signer]");
    for (var i = 0; i < roots.length; i++) setup(roots[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
