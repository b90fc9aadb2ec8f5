package altinn

import (
	"bytes"
	"encoding/json"
	"time"
)

// InstancePage is one page of a Storage instance query.
type InstancePage struct {
	Count     int        `json:"count"`
	Self      string     `json:"self"`
	Next      string     `json:"next"` // empty when there is no further page
	Instances []Instance `json:"instances"`
}

// Instance is a Storage instance.
type Instance struct {
	ID                    string                 `json:"id"` // {partyId}/{instanceGuid}
	InstanceOwner         InstanceOwner          `json:"instanceOwner"`
	AppID                 string                 `json:"appId"`
	Org                   string                 `json:"org"`
	SelfLinks             *ResourceLinks         `json:"selfLinks,omitempty"`
	DueBefore             Time                   `json:"dueBefore,omitzero"`
	VisibleAfter          Time                   `json:"visibleAfter,omitzero"`
	Process               *ProcessState          `json:"process,omitempty"`
	Status                *InstanceStatus        `json:"status,omitempty"`
	CompleteConfirmations []CompleteConfirmation `json:"completeConfirmations,omitempty"`
	Data                  []DataElement          `json:"data,omitempty"`
	PresentationTexts     map[string]string      `json:"presentationTexts,omitempty"`
	DataValues            map[string]string      `json:"dataValues,omitempty"`
	Created               Time                   `json:"created,omitzero"`
	CreatedBy             string                 `json:"createdBy,omitempty"`
	LastChanged           Time                   `json:"lastChanged,omitzero"`
	LastChangedBy         string                 `json:"lastChangedBy,omitempty"`

	// Raw is the instance JSON as Storage returned it; filled on decode.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes i and keeps the raw JSON.
func (i *Instance) UnmarshalJSON(b []byte) error {
	type plain Instance
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*i = Instance(p)
	i.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// InstanceOwner identifies who an instance belongs to. PartyID is a string
// on the wire.
type InstanceOwner struct {
	PartyID            string `json:"partyId,omitempty"`
	PersonNumber       string `json:"personNumber,omitempty"`
	OrganisationNumber string `json:"organisationNumber,omitempty"`
	Username           string `json:"username,omitempty"`
	ExternalIdentifier string `json:"externalIdentifier,omitempty"`
}

// ResourceLinks are the self links of an instance or data element.
type ResourceLinks struct {
	Apps     string `json:"apps,omitempty"`
	Platform string `json:"platform,omitempty"`
}

// ProcessState is where an instance is in its process.
type ProcessState struct {
	Started     Time                `json:"started,omitzero"`
	StartEvent  string              `json:"startEvent,omitempty"`
	CurrentTask *ProcessElementInfo `json:"currentTask,omitempty"` // absent once ended
	Ended       Time                `json:"ended,omitzero"`
	EndEvent    string              `json:"endEvent,omitempty"`
}

// IsComplete reports whether the process has ended.
func (p *ProcessState) IsComplete() bool { return p != nil && !p.Ended.IsZero() }

// ProcessElementInfo is the current task.
type ProcessElementInfo struct {
	Flow           int    `json:"flow,omitempty"`
	Started        Time   `json:"started,omitzero"`
	ElementID      string `json:"elementId,omitempty"`
	Name           string `json:"name,omitempty"`
	AltinnTaskType string `json:"altinnTaskType,omitempty"`
	Ended          Time   `json:"ended,omitzero"`
	FlowType       string `json:"flowType,omitempty"`
}

// InstanceStatus holds the archive/delete flags and read status.
type InstanceStatus struct {
	IsArchived    bool       `json:"isArchived"`
	Archived      Time       `json:"archived,omitzero"`
	IsSoftDeleted bool       `json:"isSoftDeleted"`
	SoftDeleted   Time       `json:"softDeleted,omitzero"`
	IsHardDeleted bool       `json:"isHardDeleted"`
	HardDeleted   Time       `json:"hardDeleted,omitzero"`
	ReadStatus    string     `json:"readStatus,omitempty"` // Unread, Read, UpdatedSinceLastReview
	Substatus     *Substatus `json:"substatus,omitempty"`
}

// Substatus is the app owner's status text.
type Substatus struct {
	Label       string `json:"label,omitempty"`
	Description string `json:"description,omitempty"`
}

// CompleteConfirmation records a stakeholder confirming completion.
type CompleteConfirmation struct {
	StakeholderID string `json:"stakeholderId"`
	ConfirmedOn   Time   `json:"confirmedOn,omitzero"`
}

// DataElement is one file or form on an instance.
type DataElement struct {
	ID                  string         `json:"id"`
	InstanceGUID        string         `json:"instanceGuid,omitempty"`
	DataType            string         `json:"dataType,omitempty"`
	Filename            string         `json:"filename,omitempty"`
	ContentType         string         `json:"contentType,omitempty"`
	BlobStoragePath     string         `json:"blobStoragePath,omitempty"`
	SelfLinks           *ResourceLinks `json:"selfLinks,omitempty"`
	Size                int64          `json:"size"`
	ContentHash         string         `json:"contentHash,omitempty"`
	Locked              bool           `json:"locked"`
	Refs                []string       `json:"refs,omitempty"`
	IsRead              bool           `json:"isRead"`
	Tags                []string       `json:"tags,omitempty"`
	UserDefinedMetadata []KeyValue     `json:"userDefinedMetadata,omitempty"`
	Metadata            []KeyValue     `json:"metadata,omitempty"`
	DeleteStatus        *DeleteStatus  `json:"deleteStatus,omitempty"`
	FileScanResult      string         `json:"fileScanResult,omitempty"` // NotApplicable, Pending, Clean, Infected
	References          []Reference    `json:"references,omitempty"`
	Created             Time           `json:"created,omitzero"`
	CreatedBy           string         `json:"createdBy,omitempty"`
	LastChanged         Time           `json:"lastChanged,omitzero"`
	LastChangedBy       string         `json:"lastChangedBy,omitempty"`
}

// KeyValue is a metadata entry.
type KeyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// DeleteStatus tells whether a data element is hard-deleted.
type DeleteStatus struct {
	IsHardDeleted bool `json:"isHardDeleted"`
	HardDeleted   Time `json:"hardDeleted,omitzero"`
}

// Reference links a data element to something else.
type Reference struct {
	Value     string `json:"value,omitempty"`
	Relation  string `json:"relation,omitempty"`
	ValueType string `json:"valueType,omitempty"`
}

// Time is a timestamp as Storage writes it (ISO 8601, fraction of up to
// seven digits, offset sometimes missing). Decoding is lenient: a value it
// cannot read becomes zero instead of failing the whole page.
type Time struct{ time.Time }

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02",
}

// UnmarshalJSON accepts any value; only a readable string timestamp
// yields a non-zero time.
func (t *Time) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	for _, l := range timeLayouts {
		if v, err := time.Parse(l, s); err == nil {
			t.Time = v
			return nil
		}
	}
	return nil
}

// MarshalJSON writes RFC 3339 with fraction.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.Time.Format(time.RFC3339Nano))
}
