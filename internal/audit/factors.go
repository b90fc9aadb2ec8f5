package audit

// Second-factor actions.
const (
	ActionTOTPEnrol        = "mfa.totp_enrol"
	ActionPasskeyEnrol     = "mfa.passkey_enrol"
	ActionFactorRemove     = "mfa.remove"
	ActionRecoveryCodes    = "mfa.recovery_codes"
	ActionFactorReset      = "mfa.reset"
	ActionSecondFactor     = "auth.second_factor"
	ActionRecoveryCodeUse  = "auth.recovery_code"
	ActionPasskeySignIn    = "auth.passkey_sign_in"
	ActionPasskeyCloneSeen = "auth.passkey_clone"
)
