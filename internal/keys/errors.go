package keys

import "errors"

// ErrInvalid matches every refusal of input a person supplied, so callers can
// map all of them to one "invalid" kind.
var ErrInvalid = errors.New("invalid key input")

// kind is a sentinel that also matches ErrInvalid.
type kind struct{ name string }

func (k *kind) Error() string        { return k.name }
func (k *kind) Is(target error) bool { return target == ErrInvalid }

func newKind(name string) error { return &kind{name: name} }

// Refusals of input; each also matches ErrInvalid.
var (
	ErrMalformed              = newKind("malformed key input")
	ErrPrivateKey             = newKind("private key material in upload")
	ErrKeyTooSmall            = newKind("RSA key too small")
	ErrKeyTooLarge            = newKind("RSA key too large")
	ErrUnsupportedKeyType     = newKind("unsupported key type")
	ErrUnsupportedAlg         = newKind("unsupported algorithm")
	ErrUnsupportedUse         = newKind("unsupported key use")
	ErrUnsupportedSize        = newKind("unsupported key size")
	ErrInvalidKID             = newKind("invalid kid")
	ErrCertificateExpired     = newKind("certificate expired")
	ErrCertificateNotYetValid = newKind("certificate not yet valid")
	ErrCertificateMismatch    = newKind("certificate does not match key")
	ErrMultipleKeys           = newKind("more than one key")
	ErrNoKey                  = newKind("no key found")
	ErrEncryptedKey           = newKind("encrypted private key")
)

// privateKeyMessage is fixed: it must never carry anything from the input.
const privateKeyMessage = "the upload contains a private key. Treat that key as exposed: " +
	"do not use it any more, generate a new key pair and upload only its public part. " +
	"Nothing of the upload was stored"

// Error is a refusal of input. Kind is one of the sentinels above; Msg says
// what was wrong and what to do, and never holds key material. Cause, when
// set, is a parser error that holds none either (offsets, ASN.1 tags).
type Error struct {
	Kind  error
	Msg   string
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Msg + ": " + e.Cause.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

func refuse(k error, msg string) *Error { return &Error{Kind: k, Msg: msg} }

func refuseCause(k error, msg string, cause error) *Error {
	return &Error{Kind: k, Msg: msg, Cause: cause}
}

func refusePrivate() *Error { return refuse(ErrPrivateKey, privateKeyMessage) }
