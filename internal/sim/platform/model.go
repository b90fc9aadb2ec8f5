package platform

// Storage wire types, written from reference §4.3 and Storage.Interface/Models. Member order
// follows the models; null members are omitted, as Storage omits them on these classes.

type instance struct {
	ID                    string                 `json:"id"`
	InstanceOwner         instanceOwner          `json:"instanceOwner"`
	AppID                 string                 `json:"appId"`
	Org                   string                 `json:"org"`
	SelfLinks             *resourceLinks         `json:"selfLinks,omitempty"`
	DueBefore             string                 `json:"dueBefore,omitempty"`
	VisibleAfter          string                 `json:"visibleAfter,omitempty"`
	Process               *processState          `json:"process,omitempty"`
	Status                *instanceStatus        `json:"status,omitempty"`
	CompleteConfirmations []completeConfirmation `json:"completeConfirmations,omitempty"`
	Data                  []dataElement          `json:"data"`
	PresentationTexts     map[string]string      `json:"presentationTexts,omitempty"`
	DataValues            map[string]string      `json:"dataValues,omitempty"`
	Created               string                 `json:"created,omitempty"`
	CreatedBy             string                 `json:"createdBy,omitempty"`
	LastChanged           string                 `json:"lastChanged,omitempty"`
	LastChangedBy         string                 `json:"lastChangedBy,omitempty"`
}

type instanceOwner struct {
	PartyID            string `json:"partyId"`
	PersonNumber       string `json:"personNumber,omitempty"`
	OrganisationNumber string `json:"organisationNumber,omitempty"`
}

type resourceLinks struct {
	Apps     string `json:"apps,omitempty"`
	Platform string `json:"platform,omitempty"`
}

type processState struct {
	Started     string              `json:"started,omitempty"`
	StartEvent  string              `json:"startEvent,omitempty"`
	CurrentTask *processElementInfo `json:"currentTask,omitempty"`
	Ended       string              `json:"ended,omitempty"`
	EndEvent    string              `json:"endEvent,omitempty"`
}

type processElementInfo struct {
	Flow           int    `json:"flow"`
	Started        string `json:"started,omitempty"`
	ElementID      string `json:"elementId"`
	Name           string `json:"name,omitempty"`
	AltinnTaskType string `json:"altinnTaskType,omitempty"`
	FlowType       string `json:"flowType,omitempty"`
}

type instanceStatus struct {
	IsArchived    bool       `json:"isArchived"`
	Archived      string     `json:"archived,omitempty"`
	IsSoftDeleted bool       `json:"isSoftDeleted"`
	SoftDeleted   string     `json:"softDeleted,omitempty"`
	IsHardDeleted bool       `json:"isHardDeleted"`
	HardDeleted   string     `json:"hardDeleted,omitempty"`
	ReadStatus    string     `json:"readStatus"`
	Substatus     *substatus `json:"substatus,omitempty"`
}

type substatus struct {
	Label       string `json:"label"`
	Description string `json:"description,omitempty"`
}

type completeConfirmation struct {
	StakeholderID string `json:"stakeholderId"`
	ConfirmedOn   string `json:"confirmedOn"`
}

type dataElement struct {
	ID              string         `json:"id"`
	InstanceGUID    string         `json:"instanceGuid"`
	DataType        string         `json:"dataType"`
	Filename        string         `json:"filename,omitempty"`
	ContentType     string         `json:"contentType"`
	BlobStoragePath string         `json:"blobStoragePath"`
	SelfLinks       *resourceLinks `json:"selfLinks,omitempty"`
	Size            int64          `json:"size"`
	ContentHash     string         `json:"contentHash,omitempty"`
	Locked          bool           `json:"locked"`
	Refs            []string       `json:"refs,omitempty"`
	IsRead          bool           `json:"isRead"`
	Tags            []string       `json:"tags"`
	DeleteStatus    *deleteStatus  `json:"deleteStatus,omitempty"`
	FileScanResult  string         `json:"fileScanResult"`
	Created         string         `json:"created,omitempty"`
	CreatedBy       string         `json:"createdBy,omitempty"`
	LastChanged     string         `json:"lastChanged,omitempty"`
	LastChangedBy   string         `json:"lastChangedBy,omitempty"`
}

type deleteStatus struct {
	IsHardDeleted bool   `json:"isHardDeleted"`
	HardDeleted   string `json:"hardDeleted,omitempty"`
}

// queryResponse is Storage's QueryResponse: here nulls are written (next is null on the last
// page).
type queryResponse struct {
	Count     int        `json:"count"`
	Self      *string    `json:"self"`
	Next      *string    `json:"next"`
	Instances []instance `json:"instances"`
}

type dataElementList struct {
	DataElements []dataElement `json:"dataElements"`
}
