package audit

import (
	"maps"
	"slices"
)

// actionWords says each action code in words a person reads; the code stays beside it for
// those who search or export by it. Every code the portal records must be here (a test scans
// the sources for them).
var actionWords = map[string]string{
	ActionSetup:          "Set up the portal",
	ActionSignIn:         "Signed in",
	ActionSignOut:        "Signed out",
	ActionPasswordChange: "Changed their password",
	ActionPasswordLink:   "Made a password link",
	ActionUserCreate:     "Created a user",
	ActionUserRole:       "Changed a user's role",
	ActionUserDisable:    "Disabled a user",
	ActionUserEnable:     "Enabled a user",
	ActionUserSessions:   "Ended a user's sessions",
	ActionUserApprove:    "Approved an account",
	ActionUserUnlock:     "Unlocked an account",
	ActionTeamCreate:     "Created a team",
	ActionTeamRename:     "Renamed a team",
	ActionMemberPut:      "Added a team member or changed their role",
	ActionMemberRemove:   "Removed a team member",

	ActionInvitationCreate: "Invited someone to a team",
	ActionInvitationAccept: "Accepted an invitation",
	ActionInvitationRevoke: "Revoked an invitation",

	"audit.export": "Exported the audit trail",

	ActionTOTPEnrol:        "Set up an authenticator app",
	ActionPasskeyEnrol:     "Added a passkey",
	ActionFactorRemove:     "Removed a second factor",
	ActionRecoveryCodes:    "Made new recovery codes",
	ActionFactorReset:      "Reset a person's second factors",
	ActionSecondFactor:     "Gave a second factor at sign-in",
	ActionRecoveryCodeUse:  "Signed in with a recovery code",
	ActionPasskeySignIn:    "Signed in with a passkey",
	ActionPasskeyCloneSeen: "Presented a passkey whose counter went backwards",

	"integration.create":                    "Created an integration",
	"integration.update":                    "Edited an integration",
	"integration.assign":                    "Gave an integration to a team",
	"integration.deactivate":                "Deactivated an integration",
	"integration.acknowledge_drift":         "Acknowledged a change made outside the portal",
	"integration.changed_outside":           "Found a change made outside the portal",
	"integration.sync.unowned":              "Found integrations that belong to no team",
	"integration.privileged_scopes":         "Found privileged scopes on an integration",
	"integration.privileged_scopes_cleared": "Privileged scopes gone from an integration",
	"integration.portal_client_unassigned":  "Took the portal's own client out of a team",
	"integration.try":                       "Tried an integration",

	"key.add":           "Added a key",
	"key.renew":         "Renewed a key",
	"key.delete":        "Deleted a key",
	"key.rotate.start":  "Started a key rotation",
	"key.rotate.add":    "Added the rotation's new key",
	"key.rotate.prove":  "Proved the new key works",
	"key.rotate.switch": "Switched to the new key",
	"key.rotate.done":   "Retired the old key",
	"key.rotate.cancel": "Cancelled a key rotation",
	"keys.rekey":        "Re-encrypted the kept keys under a new key-encryption key",
}

// Words says an action code in words; the code itself when it has none.
func Words(action string) string {
	if w, ok := actionWords[action]; ok {
		return w
	}
	return action
}

// Actions lists every action code that has words, sorted.
func Actions() []string { return slices.Sorted(maps.Keys(actionWords)) }
