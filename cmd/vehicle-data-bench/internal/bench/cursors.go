package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"
)

// runCursors times the cursor page (100 rows) after the first page and after a deep one of
// every single-field ordering, within a vehicle (of rows samples; after its last page but one)
// and across the fleet (after the millionth row, or its last page but one), unloaded (one run
// after a warm-up, as runOrderings). A cursor page should cost the same wherever it is; the
// deep cursors come from an offset page, which is not timed.
func (l *lab) runCursors(ctx context.Context, w io.Writer, vs []fleetVehicle, base string, rows int64) error {
	l.logf("cursors")
	v := vs[0]
	vehiclePage := max(1, rows/100-1)
	fleetPage := max(1, min(1_000_000, rows*int64(len(vs))-100)/100)
	fmt.Fprintf(w, "cursor pages of 100 rows, unloaded (one run after a warm-up), ms: after row 100 and row %s of a vehicle, after row 100 and row %s of all vehicles\n",
		thousands(vehiclePage*100), thousands(fleetPage*100))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "ordering\tvehicle 100\tvehicle %s\tall 100\tall %s\t\n", thousands(vehiclePage*100), thousands(fleetPage*100))
	err := eachOrdering(tw, func(ordering string) error {
		for _, c := range []struct {
			vehicle string
			page    string // the offset page whose next cursor is timed
		}{{v.ID, "1"}, {v.ID, fmt.Sprint(vehiclePage)}, {"", "1"}, {"", fmt.Sprint(fleetPage)}} {
			q := url.Values{"ordering": {ordering}, "page_size": {"100"}}
			if c.vehicle != "" {
				q.Set("vehicle_id", c.vehicle)
			}
			q.Set("page", c.page)
			cursor, err := nextCursor(ctx, base+"/api/v1/vehicle_data/?"+q.Encode())
			if err != nil {
				return fmt.Errorf("cursors %s: %w", ordering, err)
			}
			q.Del("page")
			q.Set("cursor", cursor)
			if err := timeCell(ctx, tw, base+"/api/v1/vehicle_data/?"+q.Encode()); err != nil {
				return err
			}
		}
		return nil
	})
	fmt.Fprintln(w)
	return err
}

// orderingFields are the contract's ordering fields, in the tables' order.
var orderingFields = []string{"id", "vehicle_id", "timestamp", "speed", "odometer", "soc", "elevation", "shift_state"}

// eachOrdering writes a row of tw per single-field ordering, every field ascending then
// descending: its name, then the cells row writes; then flushes tw.
func eachOrdering(tw *tabwriter.Writer, row func(ordering string) error) error {
	for _, field := range orderingFields {
		for _, ordering := range []string{field, "-" + field} {
			fmt.Fprintf(tw, "%s\t", ordering)
			if err := row(ordering); err != nil {
				return err
			}
			fmt.Fprintln(tw)
		}
	}
	return tw.Flush()
}

// nextCursor is the next_cursor of the list page at u.
func nextCursor(ctx context.Context, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var page struct {
		Next   *string `json:"next_cursor"`
		Detail string  `json:"detail"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return "", fmt.Errorf("%s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK || page.Next == nil {
		return "", fmt.Errorf("%s: status %d, no next_cursor (%s)", u, resp.StatusCode, page.Detail)
	}
	return *page.Next, nil
}

// timeCell writes to tw the time of a GET of u after an untimed one (a warm-up), in ms, and
// its status when it is not 200.
func timeCell(ctx context.Context, tw io.Writer, u string) error {
	var d time.Duration
	var status int
	for range 2 { // the first is the warm-up, the last counts
		t0 := time.Now()
		s, err := get(ctx, u)
		if err != nil {
			return err
		}
		d, status = time.Since(t0), s
	}
	mark := ""
	if status != http.StatusOK {
		mark = fmt.Sprintf(" (%d)", status)
	}
	_, err := fmt.Fprintf(tw, "%s%s\t", ms(d), mark)
	return err
}
