package audit

// SetIncrementalBatch lets tests make VerifyIncremental's batches small.
func SetIncrementalBatch(l *Log, n int) { l.incBatch = n }
