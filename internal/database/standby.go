package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
)

// How often a Standby compares its replay position with the primary's WAL position: every
// max lag / 2, within these bounds. A standby that falls behind serves reads for at most one
// interval more; and since a standby that keeps up within milliseconds is measured as behind by
// up to one interval while the primary writes (the lag is known to the interval), an interval
// of at most half the max lag keeps such a standby in use.
const (
	MaxLagCheckInterval = 500 * time.Millisecond
	MinLagCheckInterval = 50 * time.Millisecond
)

// LagCheckInterval is how often a Standby with that max lag is checked.
func LagCheckInterval(maxLag time.Duration) time.Duration {
	return min(max(maxLag/2, MinLagCheckInterval), MaxLagCheckInterval)
}

const (
	// lagCheckTimeout bounds one check; a standby that does not answer within it is
	// unreachable.
	lagCheckTimeout = time.Second
	// standbyConnectTimeout bounds a connect to the standby (unless its URL sets
	// connect_timeout), below the acquire timeout of short requests: a standby that does not
	// answer is a connect error the read falls back from, not a wait for a connection.
	standbyConnectTimeout = 500 * time.Millisecond
	// minLSNWait is how long a read that must see a write (WithMinLSN) waits for the standby
	// to replay it before it goes to the primary. The standby replays a create within a few
	// milliseconds on loopback (README, "Reads on a standby").
	minLSNWait = 50 * time.Millisecond
	// maxSamples bounds the primary's positions kept while a standby is stuck; past it the
	// lag is only known to be at least the age of the oldest.
	maxSamples = 1024
)

// Standby is a PostgreSQL hot standby of the primary that serves the reads (lists, counts,
// retrieves, vehicles, series, exports) while it keeps up. Writes, chunk uploads, upload status
// and migrations stay on the primary.
//
// How far behind it is: every LagCheckInterval(maxLag) the primary's pg_current_wal_lsn() is noted
// with the time it was asked, and the standby's pg_last_wal_replay_lsn() is compared with
// the notes. The lag is the age of the newest note the standby has replayed: a standby
// holding every write the primary had made 0.8 s ago is 0.8 s behind, under any write traffic,
// and 0 s behind on an idle primary. (now() - pg_last_xact_replay_timestamp() grows on an idle
// primary and compares two machines' clocks; a byte count means nothing to a client.) Reads go
// to the standby while, at the last check, it was reachable, in recovery and at most maxLag
// behind; otherwise to the primary. A read the standby fails is asked of the primary too.
//
// A nil *Standby is no standby: every read goes to the primary.
type Standby struct {
	// Interactive serves short reads; it has the primary's size and time limits.
	Interactive *pgxpool.Pool
	// Sorts serves the pages that sort every matching row, as the primary's Pools.Sorts.
	Sorts *pgxpool.Pool
	// Export streams exports, one connection each.
	Export *pgxpool.Pool

	probe   *pgxpool.Pool // on the standby, one connection: its replay position
	primary *pgxpool.Pool // the primary's probe: its WAL position
	maxLag  time.Duration
	log     *slog.Logger

	state atomic.Pointer[StandbyState]

	mu      sync.Mutex
	samples []walSample // the primary's positions, oldest first, from the newest one replayed
}

// StandbyState is what the last check found.
type StandbyState struct {
	// Usable: reads go to the standby.
	Usable bool
	// Lag is how far behind the primary the standby was; when !LagKnown, at least that.
	Lag      time.Duration
	LagKnown bool
	// Detail says why reads go to the primary; empty when Usable.
	Detail string

	reason string // Detail without figures, so that a lag that grows is logged once
}

// walSample is a position of the primary's and when it was seen: every commit made before
// first lies at or below lsn, and the primary was still at lsn at last.
type walSample struct {
	first, last time.Time
	lsn         LSN
}

// OpenStandby opens the pools of the standby at url (Interactive, Sorts and Export with sizes' sizes
// and limits, and a probe) and checks it once. A standby that does not answer is no error:
// the reads go to the primary until it does, and Degraded says so. primaryProbe is the
// primary's Pools.Probe, where the checks read the primary's WAL position. Call Run to keep
// checking.
func OpenStandby(ctx context.Context, primaryProbe *pgxpool.Pool, url string, sizes PoolSizes, maxLag time.Duration, log *slog.Logger) (*Standby, error) {
	if maxLag <= 0 {
		return nil, fmt.Errorf("open read standby: max lag must be > 0, got %s", maxLag)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Standby{primary: primaryProbe, maxLag: maxLag, log: log}
	open := func(name string, size int, params map[string]string) (*pgxpool.Pool, error) {
		return openPool(ctx, url, "standby-"+name, size, params, false)
	}
	var err error
	if s.Interactive, err = open("interactive", sizes.Interactive, interactiveParams(sizes)); err != nil {
		return nil, err
	}
	if s.Sorts, err = open("sorts", sizes.Sorts, interactiveParams(sizes)); err != nil {
		s.Close()
		return nil, err
	}
	if s.Export, err = open("export", sizes.Export, nil); err != nil {
		s.Close()
		return nil, err
	}
	if s.probe, err = open("probe", 1, probeParams); err != nil {
		s.Close()
		return nil, err
	}
	s.state.Store(&StandbyState{Detail: "read standby not checked yet: reads go to the primary", reason: "new"})
	s.check(ctx)
	return s, nil
}

// Run checks the standby every LagCheckInterval(max lag) until ctx ends.
func (s *Standby) Run(ctx context.Context) {
	if s == nil {
		return
	}
	tick := time.NewTicker(LagCheckInterval(s.maxLag))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.check(ctx)
		}
	}
}

// Close closes the standby's pools.
func (s *Standby) Close() {
	if s == nil {
		return
	}
	for _, p := range []*pgxpool.Pool{s.Interactive, s.Sorts, s.Export, s.probe} {
		if p != nil {
			p.Close()
		}
	}
}

// Usable reports whether reads go to the standby now.
func (s *Standby) Usable() bool { return s != nil && s.state.Load().Usable }

// State returns what the last check found (the zero state without a standby).
func (s *Standby) State() StandbyState {
	if s == nil {
		return StandbyState{}
	}
	return *s.state.Load()
}

// Degraded says why reads go to the primary although a standby is configured; empty when they
// go to the standby, or when there is none.
func (s *Standby) Degraded() string {
	if s == nil {
		return ""
	}
	return s.state.Load().Detail
}

// ErrNotReplayed: the standby had not replayed a read's minimum position within minLSNWait.
var ErrNotReplayed = errors.New("the read standby has not replayed the write the read must see")

// AwaitReplay returns nil once the standby, on conn, has replayed the position ctx's read must
// see (WithMinLSN; at once without one), waiting up to minLSNWait; else ErrNotReplayed, and
// the read goes to the primary (Fallback). Call it before the read's first statement: the
// read's snapshot, taken later, then holds every commit up to that position.
func (s *Standby) AwaitReplay(ctx context.Context, conn *pgxpool.Conn) error {
	lsn, ok := MinLSN(ctx)
	if !ok {
		return nil
	}
	deadline := time.Now().Add(minLSNWait)
	for {
		var replayed bool
		if err := conn.QueryRow(ctx, "SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", lsn.String()).Scan(&replayed); err != nil {
			return err
		}
		if replayed {
			return nil
		}
		if time.Now().After(deadline) {
			return ErrNotReplayed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Fallback reports whether a read that failed on the standby with err is to be asked of the
// primary: any failure of the standby's, a "not found" (the standby may not have replayed the
// row yet, so a 404 always comes from the primary) and ErrNotReplayed. Not a domain answer (an invalid page
// number holds on both), a limit (all connections busy, a statement timeout: the primary would
// be no faster) or a cancelled request. A standby that cannot be reached takes no more reads
// until a check finds it back.
func (s *Standby) Fallback(ctx context.Context, err error) bool {
	if s == nil || err == nil || ctx.Err() != nil {
		return false
	}
	if errors.Is(err, ErrNotReplayed) {
		return true
	}
	if e, ok := apperr.As(err); ok {
		return e.Kind == apperr.KindNotFound
	}
	// 57014: our statement timeout (a cancel of the client's has ended ctx). Other server
	// errors, such as a query cancelled by a conflict with recovery (40001), end the standby's
	// attempt only; a lost connection or a standby shutting down ends its turn.
	var pe *pgconn.PgError
	isPg := errors.As(err, &pe)
	if isPg && pe.Code == "57014" {
		return false
	}
	if !isPg || unavailable(err) {
		prev := s.state.Swap(&StandbyState{Detail: detailUnreachable, reason: "unreachable"})
		if prev.Usable {
			s.log.Warn("read standby failed a read: reads go to the primary until it answers again", "err", err)
		}
	}
	return true
}

const detailUnreachable = "read standby unreachable: reads go to the primary"

// check asks the primary for its WAL position and the standby for its replay position, and
// decides where reads go until the next check.
func (s *Standby) check(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, lagCheckTimeout)
	defer cancel()
	asked := time.Now()
	var primaryText string
	perr := s.primary.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&primaryText)
	var (
		inRecovery bool
		replayText *string
	)
	serr := s.probe.QueryRow(ctx, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text").Scan(&inRecovery, &replayText)
	now := time.Now()
	if parent.Err() != nil {
		return // shutting down: nothing was learnt
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if perr == nil {
		if lsn, err := ParseLSN(primaryText); err == nil {
			s.note(asked, lsn)
		}
	}
	st := &StandbyState{}
	switch {
	case serr != nil:
		st.Detail, st.reason = detailUnreachable, "unreachable"
	case !inRecovery:
		st.Detail, st.reason = "read database is not a standby (pg_is_in_recovery() is false): reads go to the primary", "primary"
	case replayText == nil:
		st.Detail, st.reason = "read standby has replayed nothing yet: reads go to the primary", "starting"
	default:
		replay, err := ParseLSN(*replayText)
		if err != nil {
			st.Detail, st.reason = fmt.Sprintf("read standby's replay position %q: reads go to the primary", *replayText), "lsn"
			break
		}
		st.Lag, st.LagKnown = s.lag(replay, now, perr == nil)
		switch {
		case st.LagKnown && st.Lag <= s.maxLag:
			st.Usable = true
		case st.LagKnown:
			st.reason = "behind"
			st.Detail = fmt.Sprintf("read standby is %s behind the primary (max-read-lag %s): reads go to the primary",
				st.Lag.Round(time.Millisecond), s.maxLag)
		default:
			st.reason = "behind"
			st.Detail = fmt.Sprintf("read standby has not caught up with the primary (at least %s behind): reads go to the primary",
				st.Lag.Round(time.Millisecond))
		}
	}
	prev := s.state.Swap(st)
	switch {
	case st.Usable && !prev.Usable:
		s.log.Info("read standby serves reads", "lag_ms", st.Lag.Milliseconds())
	case !st.Usable && (prev.Usable || prev.reason != st.reason):
		s.log.Warn("read standby serves no reads", "detail", st.Detail, "err", serr)
	}
}

// note records the primary's WAL position lsn, asked at at.
func (s *Standby) note(at time.Time, lsn LSN) {
	n := len(s.samples)
	switch {
	case n > 0 && s.samples[n-1].lsn == lsn:
		s.samples[n-1].last = at // still there: a standby holding lsn is current as of at
	case n > 0 && s.samples[n-1].lsn > lsn:
		s.samples = append(s.samples[:0], walSample{at, at, lsn}) // another primary (a restored one): start over
	default:
		if n == maxSamples {
			s.samples = append(s.samples[:0], s.samples[1:]...)
		}
		s.samples = append(s.samples, walSample{at, at, lsn})
	}
}

// lag is how long ago the primary was last at a position the standby has replayed, the newest
// such sample; older samples are dropped. When the standby has replayed none, the lag is
// unknown but at least the age of the oldest (it misses what the primary had then). When the primary could not be asked this time
// (fresh false) and the standby has replayed everything it said, the standby is as current as
// anything known: lag 0.
func (s *Standby) lag(replay LSN, now time.Time, fresh bool) (time.Duration, bool) {
	i := len(s.samples) - 1
	for i >= 0 && s.samples[i].lsn > replay {
		i--
	}
	switch {
	case len(s.samples) == 0:
		return 0, false
	case i < 0:
		return max(now.Sub(s.samples[0].first), 0), false
	}
	s.samples = append(s.samples[:0], s.samples[i:]...)
	if !fresh && len(s.samples) == 1 {
		return 0, true
	}
	return max(now.Sub(s.samples[0].last), 0), true
}
