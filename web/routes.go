package web

import "github.com/labstack/echo/v4"

// routes registers every route of the portal, one line each, grouped by feature.
func (s *Server) routes() {
	e := s.e
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/static/*", serveStatic())
	e.GET("/metrics", s.serveMetrics) // bearer token, no session: for Prometheus

	// Signing in and first run.
	e.GET("/login", s.showLogin)
	e.POST("/login", s.login)
	e.POST("/logout", s.logout)
	e.GET("/setup", s.showSetup)
	e.POST("/setup", s.setup)
	e.GET("/password/set", s.showSetPassword)
	e.POST("/password/set", s.setPassword)
	e.GET("/invite", s.showInvitation) // the link itself is the credential; signed in or not
	e.POST("/invite", s.acceptInvitation)
	e.GET("/login/oidc/:provider", s.startOIDC)             // to the OpenID Provider
	e.GET("/login/oidc/:provider/callback", s.oidcCallback) // back from it (state bound to the browser)
	if s.deps.Factors != nil {
		// The second step of a sign-in and the password-less one: no session yet, only the
		// factor cookie, so these reach nothing else.
		e.GET("/login/factor", s.showFactor)
		e.POST("/login/factor", s.verifyFactor)
		e.POST("/login/factor/cancel", s.cancelFactor)
		e.POST("/login/factor/passkey/options", s.passkeyFactorOptions)
		e.POST("/login/factor/passkey", s.passkeyFactor)
		e.POST("/login/passkey/options", s.passkeySignInOptions)
		e.POST("/login/passkey", s.passkeySignIn)
	}

	// Signed-in pages take requireUser per route (not a group), so unknown paths stay 404.
	u := signedIn{e, s.requireUser}
	u.GET("/", s.dashboard)
	u.GET("/envs/:env", s.showEnv)
	u.GET("/account", s.showAccount)
	u.POST("/account/password", s.changePassword)
	u.GET("/teams/:id", s.showTeam)
	u.GET("/onboarding", s.showOnboarding)
	u.POST("/teams/:id/invitations", s.createInvitation) // administrators and the team's owners
	u.POST("/teams/:id/invitations/:inv/revoke", s.revokeInvitation)
	u.GET("/keys", s.showKeyOverview)
	if s.deps.Factors != nil {
		// One's own second factors; the policy may make these the only pages open.
		u.GET("/account/security", s.showSecurity)
		u.POST("/account/totp", s.startTOTP)
		u.POST("/account/totp/confirm", s.confirmTOTP)
		u.POST("/account/passkeys/options", s.passkeyRegistrationOptions)
		u.POST("/account/passkeys", s.registerPasskey)
		u.POST("/account/factors/:factor/remove", s.removeFactor)
		u.POST("/account/recovery-codes", s.regenerateRecoveryCodes)
		u.POST("/admin/users/:id/second-factor/reset", s.resetFactor)
	}

	// Integrations per environment (the domain decides who may see and change each).
	u.GET("/envs/:env/integrations", s.listIntegrations)
	u.POST("/envs/:env/integrations", s.createIntegration)
	u.GET("/envs/:env/integrations/new", s.newIntegration)
	u.POST("/envs/:env/integrations/sync", s.syncIntegrations)
	u.GET("/envs/:env/integrations/:id", s.showIntegration)
	u.GET("/envs/:env/integrations/:id/edit", s.editIntegration)
	u.POST("/envs/:env/integrations/:id/edit", s.updateIntegration)
	u.GET("/envs/:env/integrations/:id/deactivate", s.confirmDeactivate)
	u.POST("/envs/:env/integrations/:id/deactivate", s.deactivateIntegration)
	u.GET("/envs/:env/integrations/:id/copy", s.confirmCopy)
	u.POST("/envs/:env/integrations/:id/copy", s.copyIntegration)
	u.POST("/envs/:env/integrations/:id/acknowledge", s.acknowledgeDrift)

	// Keys of an integration.
	u.GET("/envs/:env/integrations/:id/keys", s.showKeys)
	u.POST("/envs/:env/integrations/:id/keys/generate", s.startKeyGeneration)
	u.GET("/envs/:env/integrations/:id/keys/generated/:job", s.showKeyGeneration)
	u.POST("/envs/:env/integrations/:id/keys/generated/:job", s.addGeneratedKey)
	u.POST("/envs/:env/integrations/:id/keys/upload", s.uploadKey)
	u.POST("/envs/:env/integrations/:id/keys/renew", s.renewKey)
	u.GET("/envs/:env/integrations/:id/keys/delete", s.confirmDeleteKey)
	u.POST("/envs/:env/integrations/:id/keys/delete", s.deleteKey)

	// Rotating a key without downtime: start, add, prove, switch, retire (or cancel).
	u.GET("/envs/:env/integrations/:id/keys/rotate", s.showRotation)
	u.POST("/envs/:env/integrations/:id/keys/rotate", s.startRotation)
	u.POST("/envs/:env/integrations/:id/keys/rotate/generate", s.startRotationKeyGeneration)
	u.GET("/envs/:env/integrations/:id/keys/rotate/generated/:job", s.showRotationKeyGeneration)
	u.POST("/envs/:env/integrations/:id/keys/rotate/generated/:job", s.addRotationKey)
	u.POST("/envs/:env/integrations/:id/keys/rotate/upload", s.uploadRotationKey)
	u.POST("/envs/:env/integrations/:id/keys/rotate/use", s.useRotationKey)
	u.POST("/envs/:env/integrations/:id/keys/rotate/prove", s.proveRotation)
	u.GET("/envs/:env/integrations/:id/keys/rotate/proof", s.showProofStatus)
	u.POST("/envs/:env/integrations/:id/keys/rotate/switch", s.switchRotation)
	u.POST("/envs/:env/integrations/:id/keys/rotate/retire", s.retireRotation)
	u.POST("/envs/:env/integrations/:id/keys/rotate/cancel", s.cancelRotation)

	// Trying an integration live, step by step (team owners, members and admins), and
	// explaining a pasted error or grant.
	u.GET("/envs/:env/integrations/:id/try", s.showTry)
	u.POST("/envs/:env/integrations/:id/try/grant", s.tryGrant)
	u.POST("/envs/:env/integrations/:id/try/token", s.tryToken)
	u.POST("/envs/:env/integrations/:id/try/exchange", s.tryExchange)
	u.POST("/envs/:env/integrations/:id/try/instances", s.tryInstances)
	u.POST("/envs/:env/integrations/:id/try/next", s.tryNext)
	u.POST("/envs/:env/integrations/:id/try/instance", s.tryInstance)
	u.POST("/envs/:env/integrations/:id/try/get", s.tryGet)
	u.GET("/envs/:env/integrations/:id/try/data", s.tryData)
	u.POST("/envs/:env/integrations/:id/try/reveal", s.tryReveal)
	u.GET("/explain", s.showExplain)
	u.POST("/explain", s.explain)

	// Administration (the domain refuses non-admins).
	u.GET("/admin/users", s.listUsers)
	u.POST("/admin/users", s.createUser)
	u.GET("/admin/users/:id", s.showUser)
	u.POST("/admin/users/:id/role", s.setUserRole)
	u.POST("/admin/users/:id/disabled", s.setUserDisabled)
	u.POST("/admin/users/:id/sessions", s.endUserSessions)
	u.POST("/admin/users/:id/password-link", s.newPasswordLink)
	u.POST("/admin/users/:id/approve", s.approveUser)
	u.POST("/admin/users/:id/unlock", s.unlockUser)
	u.GET("/admin/environments", s.listEnvironments)
	u.GET("/admin/teams", s.listTeams)
	u.POST("/admin/teams", s.createTeam)
	u.POST("/admin/teams/:id/name", s.renameTeam)
	u.POST("/admin/teams/:id/members", s.putMember)
	u.POST("/admin/teams/:id/members/:user/remove", s.removeMember)

	// The audit trail (administrators; team owners see their teams' events).
	u.GET("/audit", s.showAudit)
	u.GET("/audit/export", s.exportAudit)
}

// signedIn registers routes that need a signed-in person.
type signedIn struct {
	e       *echo.Echo
	require echo.MiddlewareFunc
}

func (g signedIn) GET(path string, h echo.HandlerFunc)  { g.e.GET(path, h, g.require) }
func (g signedIn) POST(path string, h echo.HandlerFunc) { g.e.POST(path, h, g.require) }
