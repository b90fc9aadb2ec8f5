// Package keys generates, reads and protects the RSA keys that Maskinporten
// clients sign their grants with: key generation off the request path,
// parsing of uploaded public keys (JWK, JWK set, PEM, X.509), RFC 7638
// thumbprints, exports of generated private keys, and sealing of private keys
// the portal keeps, under a key-encryption key that never reaches the database.
//
// It imports nothing from the rest of the portal. Errors about input a person
// supplied are *Error values: errors.Is matches both the specific sentinel
// (ErrPrivateKey, ErrKeyTooSmall, ...) and ErrInvalid, and Error() is text a
// person can act on. No error, String, GoString, Format or LogValue output
// ever contains key material.
package keys
