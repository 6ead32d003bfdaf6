package server

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vehicle-data/vehicle-data/internal/admission"
	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/export"
)

// gates cap the long kinds of work. Short requests have no gate of their own: their
// budget is the interactive pool, whose wait is bounded where the connection is taken
// (database.Acquire).
type gates struct {
	exports, xlsx, finalizes, chunkBytes *admission.Gate
}

func newGates(l config.Limits) *gates {
	return &gates{
		// An export runs for seconds to minutes: waiting for a slot would only hold the
		// client's connection, so a full kind refuses at once.
		exports: admission.NewGate("concurrent exports", "max-exports", int64(l.MaxExports), 0, 5*time.Second),
		xlsx:    admission.NewGate("concurrent XLSX exports", "max-xlsx-exports", int64(l.MaxXLSXExports), 0, 10*time.Second),
		// Most finalizes are a vehicle's last minutes, done in tens of milliseconds
		// (docs/scaling.md, "Capacity on this machine"): refused at once, a third one arriving
		// while two run would be sent away for 5 s over a wait of milliseconds, so a finalize
		// waits up to the acquire timeout for a slot. A big one still holds its slot for
		// seconds; the wait bounds what a refusal costs.
		finalizes: admission.NewGate("concurrent finalizes", "max-finalizes", int64(l.MaxFinalizes), l.AcquireTimeout, 5*time.Second),
		// A chunk is stored in well under a second: waiting briefly for room is better
		// than a refusal the client must retry.
		chunkBytes: admission.NewGate("bytes of upload chunks in flight", "chunk-bytes-in-flight", l.ChunkBytesInFlight, l.AcquireTimeout, 2*time.Second),
	}
}

func (g *gates) all() []*admission.Gate {
	return []*admission.Gate{g.exports, g.xlsx, g.finalizes, g.chunkBytes}
}

// admit holds one unit of gate for the whole request, the streamed response included (the
// strict wrapper writes the body inside the route's handler).
func admit(gate *admission.Gate) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			release, err := gate.Acquire(c.Request().Context(), 1)
			if err != nil {
				return err
			}
			defer release()
			return next(c)
		}
	}
}

// admitXLSX adds the XLSX gate to an export that asks for a workbook, the format built in
// memory. Other values of export pass (a bad one is the handler's 400).
func admitXLSX(gate *admission.Gate) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if f, err := export.ParseFormat(c.QueryParam("export")); err != nil || f != export.XLSX {
				return next(c)
			}
			return admit(gate)(next)(c)
		}
	}
}

// admitChunk reserves the chunk's bytes before its body is read: a chunk is held in memory
// while it is stored, so the bytes in flight bound the memory of concurrent uploads. A body
// of unknown length reserves the largest a chunk request may be.
func admitChunk(gate *admission.Gate, maxBody int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			n := c.Request().ContentLength
			if n < 0 || n > maxBody {
				n = maxBody // a longer declared body is refused by bodyLimit anyway
			}
			release, err := gate.Acquire(c.Request().Context(), n)
			if err != nil {
				return err
			}
			defer release()
			return next(c)
		}
	}
}

// standardMethods are the methods metrics name; any other becomes "OTHER", so invented
// methods cannot grow the label set without bound.
var standardMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
	http.MethodConnect: true, http.MethodTrace: true,
}

func methodLabel(m string) string {
	if standardMethods[m] {
		return m
	}
	return "OTHER"
}
