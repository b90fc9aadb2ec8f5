package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"portal/internal/audit"
)

// errAuditBroken is returned (exit status 1) when the audit chain does not hold.
var errAuditBroken = errors.New("the audit trail does not verify")

func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usagef("usage: portal audit verify [--data DIR | --config FILE] [--heads FILE]")
	}
	var headsFile *string
	cfg, err := commandConfig("audit verify", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
		headsFile = fs.String("heads", "", "JSON Lines file of published chain heads ({\"id\":N,\"hash\":\"...\"}, or the portal's JSON log) to check the chain against")
	})
	if err != nil {
		return err
	}
	var heads []audit.Head
	if *headsFile != "" {
		if heads, err = readHeads(*headsFile); err != nil {
			return err
		}
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
	if *headsFile != "" {
		problems, err := audit.NewLog(db, nil).CheckHeads(ctx, heads)
		if err != nil {
			return fmt.Errorf("check the published heads: %w", err)
		}
		if len(problems) > 0 {
			fmt.Fprintf(stdout, "BROKEN: the chain holds together (%d events) but does not match %d of %d published heads:\n", res.Events, len(problems), len(heads))
			for _, p := range problems {
				fmt.Fprintln(stdout, "  "+p)
			}
			return fmt.Errorf("%w: %d published heads do not match", errAuditBroken, len(problems))
		}
	}
	fmt.Fprintf(stdout, "ok: %d events verify, the last is %d with hash %s\n", res.Events, res.LastID, res.LastHash)
	if *headsFile != "" {
		fmt.Fprintf(stdout, "ok: all %d published heads match\n", len(heads))
	}
	return nil
}

// headMessage is the message of the log line that publishes the chain's head.
const headMessage = "audit chain head"

// readHeads reads a JSON Lines file of published heads: {"id":N,"hash":"HEX"} per line, or
// the portal's own JSON log, whose "audit chain head" lines carry the same two members (other
// lines of the log are skipped). Blank lines are skipped; anything else is a mistake.
func readHeads(path string) ([]audit.Head, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("heads file %s cannot be opened: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	var heads []audit.Head
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var rec struct {
			Msg  *string `json:"msg"`
			ID   *int64  `json:"id"`
			Hash *string `json:"hash"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return nil, usagef("heads file %s, line %d: not JSON (%v); each line is {\"id\":N,\"hash\":\"HEX\"}", path, n, err)
		}
		if rec.Msg != nil && *rec.Msg != headMessage {
			continue // another line of the portal's JSON log
		}
		if rec.ID == nil || rec.Hash == nil || *rec.ID < 0 || !validHash(*rec.Hash) {
			return nil, usagef("heads file %s, line %d: needs \"id\" (an event number) and \"hash\" (64 hex digits)", path, n)
		}
		heads = append(heads, audit.Head{ID: *rec.ID, Hash: *rec.Hash})
	}
	if err := sc.Err(); err != nil {
		return nil, usagef("heads file %s: %v", path, err)
	}
	if len(heads) == 0 {
		return nil, usagef("heads file %s holds no heads", path)
	}
	return heads, nil
}

func validHash(h string) bool {
	b, err := hex.DecodeString(h)
	return err == nil && len(b) == 32
}

// publishAuditHead logs the chain's head, so copies of it exist outside the database: `portal
// audit verify --heads` checks the chain against them. It also reports it to onPublish (the
// metrics, which show the last published head on /metrics); onPublish may be nil.
func publishAuditHead(ctx context.Context, l *audit.Log, log *slog.Logger, onPublish func(audit.Head)) {
	h, err := l.Head(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("read the audit chain head", "err", err)
		}
		return
	}
	log.Info(headMessage, "id", h.ID, "hash", h.Hash)
	if onPublish != nil {
		onPublish(h)
	}
}

// publishAuditHeads publishes the head every period until ctx ends.
func publishAuditHeads(ctx context.Context, l *audit.Log, log *slog.Logger, period time.Duration, onPublish func(audit.Head)) {
	every(ctx, period, func() { publishAuditHead(ctx, l, log, onPublish) })
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
