package clients

// Preset is a group of scopes a team asks for to do one thing with Altinn or Dialogporten.
type Preset struct {
	ID      string
	Title   string
	Purpose string // one sentence: what the scopes are for
	DocURL  string
	Scopes  []PresetScope
}

// PresetScope is one scope of a preset and who grants access to it.
type PresetScope struct {
	Name string
	Ask  string // whom the organisation asks for access when it has none
}

const (
	askAltinn = "Altinn (servicedesk@altinn.no)"
	askDigdir = "Digdir (servicedesk@digdir.no)"
)

// Presets are the service-owner APIs' scope groups, in the order the form offers them.
var Presets = []Preset{
	{ID: "instances", Title: "Read and process app data",
		Purpose: "Read the instances of your Altinn apps and their data as the service owner; with write, also create, update and complete them.",
		DocURL:  "https://docs.altinn.studio/authentication/what-do-you-get/maskinporten/",
		Scopes:  []PresetScope{{"altinn:serviceowner/instances.read", askAltinn}, {"altinn:serviceowner/instances.write", askAltinn}}},
	{ID: "notifications", Title: "Notifications",
		Purpose: "Order email and SMS notifications to people and organisations through Altinn Notifications, and read how they went.",
		DocURL:  "https://docs.altinn.studio/notifications/getting-started/service-owner-system/",
		Scopes:  []PresetScope{{"altinn:serviceowner/notifications.create", askDigdir}, {"altinn:serviceowner/notifications.read", askDigdir}}},
	{ID: "events", Title: "Events",
		Purpose: "Publish events to Altinn Events and subscribe to events from apps, Correspondence and Broker.",
		DocURL:  "https://docs.altinn.studio/events/subscribe-to-events/get-started/api-access/",
		Scopes:  []PresetScope{{"altinn:events.publish", askAltinn}, {"altinn:events.subscribe", askAltinn}}},
	{ID: "correspondence", Title: "Correspondence",
		Purpose: "Send messages to people and organisations' Altinn inboxes with Altinn Correspondence, and read them and their status.",
		DocURL:  "https://docs.altinn.studio/correspondence/getting-started/developer-guides/maskinporten/",
		Scopes:  []PresetScope{{"altinn:correspondence.read", askAltinn}, {"altinn:correspondence.write", askAltinn}}},
	{ID: "broker", Title: "Broker",
		Purpose: "Exchange files with other organisations through Altinn Broker: upload with write, download with read.",
		DocURL:  "https://docs.altinn.studio/broker/",
		Scopes:  []PresetScope{{"altinn:broker.read", askAltinn}, {"altinn:broker.write", askAltinn}}},
	{ID: "dialogporten", Title: "Dialogporten",
		Purpose: "Create and update the dialogs of your services in Dialogporten's common inbox, search them, and (admin) act on dialogs across your services.",
		DocURL:  "https://docs.altinn.studio/dialogporten/user-guides/authenticating/",
		Scopes: []PresetScope{{"digdir:dialogporten.serviceprovider", askDigdir}, {"digdir:dialogporten.serviceprovider.search", askDigdir},
			{"digdir:dialogporten.serviceprovider.admin", askDigdir}}},
	{ID: "resources", Title: "Resource registry and authorisation",
		Purpose: "Read, create and change your resources and their access policies in the Resource Registry, and ask Altinn Authorization whether someone may act.",
		DocURL:  "https://docs.altinn.studio/api/resourceregistry/resource/",
		Scopes: []PresetScope{{"altinn:resourceregistry/resource.read", askAltinn}, {"altinn:resourceregistry/resource.write", askAltinn},
			{"altinn:authorization/authorize", askAltinn}}},
}

// PresetChoice is a preset as the organisation may use it in one environment.
type PresetChoice struct {
	Preset
	Usable  []string      // scopes the organisation has access to: the preset adds these
	Missing []PresetScope // scopes it lacks, with whom to ask
}

// presetChoices splits each preset's scopes into those the organisation may use (its scope
// access in the self-service API, or open to all) and those it must ask for.
func presetChoices(usable []Scope) []PresetChoice {
	idx := scopeIndex(usable)
	out := make([]PresetChoice, 0, len(Presets))
	for _, p := range Presets {
		c := PresetChoice{Preset: p}
		for _, sc := range p.Scopes {
			if _, ok := idx[sc.Name]; ok {
				c.Usable = append(c.Usable, sc.Name)
			} else {
				c.Missing = append(c.Missing, sc)
			}
		}
		out = append(out, c)
	}
	return out
}

// PresetScopes are the usable scopes of the preset id in the form, or nil for an unknown id.
func (f Form) PresetScopes(id string) []string {
	for _, p := range f.Presets {
		if p.ID == id {
			return p.Usable
		}
	}
	return nil
}
