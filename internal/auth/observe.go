package auth

import "sync"

// observers are told about people whose rights may have changed, after the change commits:
// whatever holds rights granted earlier (open tries of an integration, for one) drops them.
type observers struct {
	mu  sync.Mutex
	fns []func(userID int64)
}

// OnPersonChanged registers fn, called with a user's id after a change that may take rights
// away from them has committed: a membership removed or its role changed, the portal role
// changed, the account disabled, their sessions or password ended or changed, a sign-out. fn
// runs on the caller's goroutine and must not call back into the Service's methods that change
// people.
func (s *Service) OnPersonChanged(fn func(userID int64)) {
	s.changed.mu.Lock()
	s.changed.fns = append(s.changed.fns, fn)
	s.changed.mu.Unlock()
}

// personChanged tells the observers about userID when err is nil (the change committed) and
// returns err, so a method can end with return s.personChanged(id, s.db.Tx(...)).
func (s *Service) personChanged(userID int64, err error) error {
	if err != nil || userID == 0 {
		return err
	}
	s.changed.mu.Lock()
	fns := append([]func(int64){}, s.changed.fns...)
	s.changed.mu.Unlock()
	for _, fn := range fns {
		fn(userID)
	}
	return nil
}
