package uploader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

const (
	maxBackoff    = 30 * time.Second
	maxRetryAfter = time.Minute // a server asking for more is not worth waiting for
)

// retryableError marks a failure worth trying again: a network error, a 429 or a 5xx other
// than 507.
type retryableError struct {
	err        error
	retryAfter time.Duration // the server's Retry-After, if any
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// withRetry runs attempt until it succeeds, fails permanently, ctx ends or the
// retries are used up. Only errors wrapped in retryableError are retried.
func withRetry(ctx context.Context, retries int, base time.Duration, attempt func(ctx context.Context) error) error {
	for n := 0; ; n++ {
		err := attempt(ctx)
		var r *retryableError
		if err == nil || !errors.As(err, &r) {
			return err
		}
		if n >= retries {
			return fmt.Errorf("%w (gave up after %d attempts)", r.err, n+1)
		}
		t := time.NewTimer(backoff(base, n, r.retryAfter))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (before retrying after: %v)", ctx.Err(), r.err)
		case <-t.C:
		}
	}
}

// backoff is the wait before retry number n+1: base doubled n times, capped, with
// jitter so parallel workers hitting one failure do not come back in lockstep.
func backoff(base time.Duration, n int, retryAfter time.Duration) time.Duration {
	d := maxBackoff
	if n < 30 && base<<n < maxBackoff {
		d = base << n
	}
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, maxRetryAfter)
	}
	return d
}

// transportError classifies an error of a request that got no usable answer.
// Network errors are retried; an answer that does not decode is not, because
// asking again would give the same answer.
func transportError(ctx context.Context, op string, err error) error {
	err = fmt.Errorf("%s: %w", op, err)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if ctx.Err() != nil || errors.As(err, &syntax) || errors.As(err, &typ) {
		return err
	}
	return &retryableError{err: err}
}

// statusError wraps e as retryable when its status is worth retrying: a 429 or a 5xx,
// which say the server is busy or down for now. A 507 is a quota (the server's storage for
// unfinalized uploads is full) that frees up only as uploads are finalized or expire, in
// hours rather than the minute the retries span: asking again only adds load.
func statusError(e *APIError, header http.Header) error {
	retry := e.StatusCode == http.StatusTooManyRequests ||
		e.StatusCode >= 500 && e.StatusCode != http.StatusInsufficientStorage
	if retry {
		return &retryableError{err: e, retryAfter: parseRetryAfter(header)}
	}
	return e
}

// parseRetryAfter understands the seconds form; the date form is rare and ignored.
func parseRetryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(min(s, int(maxRetryAfter/time.Second))) * time.Second
}
