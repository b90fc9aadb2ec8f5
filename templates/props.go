// Package templates holds the portal's templ components and the view models they take. Views
// get data already shaped for the screen: no I/O, no decisions beyond display.
package templates

// Layout is what every page's frame needs.
type Layout struct {
	Title     string
	OrgName   string
	CSRF      string
	User      *User // nil when signed out
	Envs      []EnvLink
	Nav       []NavLink
	Flash     string
	FlashKind string // "success", "warning", "danger", "info"
	SignOut   string // URL of the sign-out action
	Account   string // URL of the person's own account page
	// PropagationNote shows the footer about Digdir's propagation delay, on the pages where
	// integrations and keys change.
	PropagationNote bool
}

// User is the signed-in person as the header shows them.
type User struct {
	Name    string
	Email   string
	IsAdmin bool
}

// EnvLink is one entry of the environment switcher.
type EnvLink struct {
	Name      string // tt02, prod
	Label     string
	URL       string
	Simulated bool
	Current   bool
}

// NavLink is one entry of the navigation.
type NavLink struct {
	Label   string
	URL     string
	Current bool
}

// Field is one form field's value and message.
type Field struct {
	Value string
	Error string
}

// Option is one choice of a select.
type Option struct {
	Value    string
	Label    string
	Selected bool
}
