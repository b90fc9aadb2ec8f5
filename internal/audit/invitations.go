package audit

// Actions of team invitations. Their details name the invitation, address and team role,
// never the link's token or its hash.
const (
	ActionInvitationCreate = "invitation.create"
	ActionInvitationAccept = "invitation.accept"
	ActionInvitationRevoke = "invitation.revoke"
)
