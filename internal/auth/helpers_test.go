package auth_test

import "portal/internal/audit"

func auditMeta() audit.Meta { return audit.Meta{Actor: "test"} }
