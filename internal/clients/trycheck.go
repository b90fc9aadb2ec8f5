package clients

import (
	"context"

	"portal/internal/auth"
)

// MayTry checks that p may try the integration now: the rule of TryTarget (admins, and the
// owners and members of the team that owns it according to the mirror), without re-reading
// Digdir. An open try asks again at every step, so rights lost since it started count at once.
func (s *Service) MayTry(ctx context.Context, p *auth.Principal, env, clientID string) error {
	if _, err := s.env(env); err != nil {
		return err
	}
	_, err := s.changeable(ctx, p, env, clientID)
	return err
}
