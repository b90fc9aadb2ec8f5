package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"portal/internal/audit"
)

// errAuditBroken is returned (exit status 1) when the audit chain does not hold.
var errAuditBroken = errors.New("the audit trail does not verify")

func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usagef("usage: portal audit verify [--data DIR | --config FILE]")
	}
	cfg, err := commandConfig("audit verify", args[1:], getenv, stderr, nil)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := audit.NewLog(db, nil).Verify(ctx)
	var broken *audit.BrokenError
	if errors.As(err, &broken) {
		fmt.Fprintf(stdout, "BROKEN at event %d: %s (%d events before it verified)\n", broken.ID, broken.Reason, res.Events)
		return fmt.Errorf("%w: first broken event is %d", errAuditBroken, broken.ID)
	}
	if err != nil {
		return fmt.Errorf("verify the audit trail: %w", err)
	}
	fmt.Fprintf(stdout, "ok: %d events verify, the last is %d with hash %s\n", res.Events, res.LastID, res.LastHash)
	return nil
}

// catchUpAuditChain verifies, batch by batch, the audit events no checkpoint covers yet (after
// an upgrade or a restore, say), so the audit page and /metrics never meet a long backlog.
// A broken chain is logged as an error; the audit page names the event.
func catchUpAuditChain(ctx context.Context, l *audit.Log, log *slog.Logger) {
	for ctx.Err() == nil {
		st, err := l.VerifyIncremental(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("verify the audit chain", "err", err)
			}
			return
		case st.Broken != nil:
			log.Error("the audit trail does not verify: run `portal audit verify` and investigate", "event", st.Broken.ID, "reason", st.Broken.Reason)
			return
		case !st.Behind:
			return
		}
	}
}
