package server_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/gen/client"
)

// seedTies creates n records for veh1 whose speeds take three values and a null, so that
// orderings by speed lean on the id tie-break and the null rule.
func seedTies(t *testing.T, e *env, n int) []client.VehicleData {
	t.Helper()
	base := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	in := make([]client.VehicleDataInput, n)
	for i := range in {
		var speed *float64
		if i%4 != 3 {
			speed = ptr(float64(i%3) * 10)
		}
		in[i] = rec("veh1", base.Add(time.Duration(i)*time.Minute), speed, int32(i%5), nil)
	}
	return e.seed(t, in...)
}

// Following next cursors through the generated client visits every row once, in the order
// of the unpaged export; previous cursors walk back; next/previous links carry the cursor.
func TestListCursorPagination(t *testing.T) {
	e := newEnv(t)
	seedTies(t, e, 37)
	ctx := t.Context()
	for _, ordering := range []string{"timestamp", "-speed", "speed,-soc", "-id"} {
		all, err := e.Client.ListVehicleDataWithResponse(ctx, &client.ListVehicleDataParams{Ordering: &ordering, PageSize: ptr(int32(100))})
		if err != nil || all.JSON200 == nil {
			t.Fatalf("%s: %v %s", ordering, err, all.Body)
		}
		want := ids(all.JSON200.Results)

		var (
			got   []int64
			pages []*client.VehicleDataPage
		)
		params := &client.ListVehicleDataParams{Ordering: &ordering, PageSize: ptr(int32(5))}
		for {
			resp, err := e.Client.ListVehicleDataWithResponse(ctx, params)
			if err != nil || resp.JSON200 == nil {
				t.Fatalf("%s: %v %d %s", ordering, err, resp.StatusCode(), resp.Body)
			}
			p := resp.JSON200
			if p.Count != 37 {
				t.Fatalf("%s: count %d with a cursor, want 37", ordering, p.Count)
			}
			pages = append(pages, p)
			got = append(got, ids(p.Results)...)
			if p.NextCursor == nil {
				if p.Next != nil {
					t.Fatalf("%s: next link %q without a next cursor", ordering, *p.Next)
				}
				break
			}
			if p.Next == nil {
				t.Fatalf("%s: next cursor without a next link", ordering)
			}
			if len(pages) > 1 { // a cursor page links by cursor, not by page
				u, _ := url.Parse(*p.Next)
				if u.Query().Get("cursor") != *p.NextCursor || u.Query().Has("page") {
					t.Fatalf("%s: next link %s", ordering, *p.Next)
				}
			}
			params = &client.ListVehicleDataParams{Ordering: &ordering, PageSize: ptr(int32(5)), Cursor: p.NextCursor}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: cursor walk %v, want %v", ordering, got, want)
		}
		if pages[0].PreviousCursor != nil {
			t.Fatalf("%s: page 1 has a previous cursor", ordering)
		}
		for k := len(pages) - 1; k > 0; k-- {
			resp, err := e.Client.ListVehicleDataWithResponse(ctx, &client.ListVehicleDataParams{Ordering: &ordering, PageSize: ptr(int32(5)), Cursor: pages[k].PreviousCursor})
			if err != nil || resp.JSON200 == nil {
				t.Fatalf("%s: %v %s", ordering, err, resp.Body)
			}
			if g, w := ids(resp.JSON200.Results), ids(pages[k-1].Results); !slices.Equal(g, w) {
				t.Fatalf("%s: back from page %d: %v, want %v", ordering, k+1, g, w)
			}
		}
	}
}

func TestListCursorErrors(t *testing.T) {
	e := newEnv(t)
	seedTies(t, e, 12)
	_, first, _ := listBody(t, e, "page_size=5&ordering=-speed")
	if first.NextCursor == nil {
		t.Fatal("no next cursor on page 1 of 3")
	}
	c := url.QueryEscape(*first.NextCursor)
	tampered := []byte(*first.NextCursor)
	tampered[len(tampered)/2] ^= 1
	other := e.seedOther(t)
	cases := map[string]string{
		"with page":       "?ordering=-speed&page=2&cursor=" + c,
		"other ordering":  "?ordering=speed&cursor=" + c,
		"other filter":    "?ordering=-speed&vehicle_id=veh1&cursor=" + c,
		"other bound":     "?ordering=-speed&initial_timestamp=2024-06-01T12:01&cursor=" + c,
		"tampered":        "?ordering=-speed&cursor=" + url.QueryEscape(string(tampered)),
		"made up":         "?ordering=-speed&cursor=eyJ2IjoxLCJrIjpbMTBdLCJpIjo0fQ",
		"other server":    "?ordering=-speed&cursor=" + url.QueryEscape(other),
		"not base64":      "?ordering=-speed&cursor=%25%25%25",
		"invalid UTF-8 ?": "?ordering=-speed&cursor=" + c + "%FF",
	}
	for name, q := range cases {
		t.Run(name, func(t *testing.T) {
			status, _, body := listBody(t, e, strings.TrimPrefix(q, "?"))
			if status != 400 {
				t.Fatalf("status %d, want 400: %s", status, body)
			}
			if names := fieldNames(problem(t, body)); !slices.Contains(names, "cursor") {
				t.Fatalf("errors name %v, want cursor: %s", names, body)
			}
		})
	}
	// The same filters, spelt otherwise (a bound in another zone), keep the cursor valid.
	_, p, _ := listBody(t, e, "page_size=5&ordering=-speed&initial_timestamp=2024-06-01T14:00&timezone=Europe/Berlin")
	status, _, body := listBody(t, e, "page_size=5&ordering=-speed&initial_timestamp=2024-06-01T12:00:00Z&cursor="+url.QueryEscape(*p.NextCursor))
	if status != 200 {
		t.Fatalf("same instant, other spelling: status %d: %s", status, body)
	}
}

// seedOther returns a cursor made by a server with another key (another database).
func (e *env) seedOther(t *testing.T) string {
	t.Helper()
	o := newEnv(t)
	// Test databases are clones of one migrated template, key included: give this one its own,
	// as a separate installation would have.
	if _, err := o.Pool.Exec(t.Context(), `UPDATE server_secrets SET value = sha256(value) WHERE name = 'cursor'`); err != nil {
		t.Fatal(err)
	}
	seedTies(t, o, 12)
	_, p, _ := listBody(t, o, "page_size=5&ordering=-speed")
	return *p.NextCursor
}

// A cursor made by one replica works on another sharing the database: the key lives there.
func TestListCursorAcrossReplicas(t *testing.T) {
	a := newEnv(t)
	b := newEnvOn(t, a.Pool)
	seedTies(t, a, 12)
	_, p, _ := listBody(t, a, "page_size=5")
	status, _, body := listBody(t, b, "page_size=5&cursor="+url.QueryEscape(*p.NextCursor))
	if status != 200 {
		t.Fatalf("replica b: status %d: %s", status, body)
	}
}

// Minute precision, as an HTML datetime-local input sends, in list, export and series.
func TestMinutePrecisionBounds(t *testing.T) {
	e := newEnv(t)
	seedTies(t, e, 10) // 12:00 .. 12:09 UTC
	for q, want := range map[string]int64{
		"?initial_timestamp=2024-06-01T12:03&final_timestamp=2024-06-01T12:05":                        3,
		"?initial_timestamp=2024-06-01%2012:03":                                                       7,
		"?initial_timestamp=2024-06-01T14:03%2B02:00":                                                 7,
		"?initial_timestamp=2024-06-01T14:03+02:00":                                                   7, // + arrives as a space
		"?initial_timestamp=2024-06-01T14:03&timezone=Europe/Berlin&final_timestamp=2024-06-01T14:04": 2,
	} {
		status, page, body := listBody(t, e, strings.TrimPrefix(q, "?"))
		if status != 200 || page.Count != want {
			t.Errorf("list %s: status %d count %d, want %d: %s", q, status, page.Count, want, body)
		}
	}
	status, _, body := e.do(t, "GET", "/api/v1/vehicle_data/export/?export=ndjson&initial_timestamp=2024-06-01T12:08", "", nil)
	if n := strings.Count(string(body), "\n"); status != 200 || n != 2 {
		t.Errorf("export: status %d, %d rows, want 2: %s", status, n, body)
	}
	resp, err := e.Client.GetVehicleSeriesWithResponse(t.Context(), "veh1", &client.GetVehicleSeriesParams{
		InitialTimestamp: ptr("2024-06-01T12:02"), FinalTimestamp: ptr("2024-06-01T12:04"),
	})
	if err != nil || resp.JSON200 == nil {
		t.Fatalf("series: %v %s", err, resp.Body)
	}
	var n int64
	for _, b := range resp.JSON200.Buckets {
		n += b.Count
	}
	if n != 3 {
		t.Errorf("series counts %d records, want 3: %s", n, resp.Body)
	}
}

func TestSeriesEndpoint(t *testing.T) {
	e := newEnv(t)
	seedTies(t, e, 10) // one a minute from 12:00; every fourth speed null
	ctx := t.Context()

	resp, err := e.Client.GetVehicleSeriesWithResponse(ctx, "veh1", &client.GetVehicleSeriesParams{Fields: ptr("speed,soc"), MaxPoints: ptr(int32(5))})
	if err != nil || resp.JSON200 == nil {
		t.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body)
	}
	s := resp.JSON200
	// 12:00..12:09 in at most 5 buckets: 1m gives 10, 5m gives 2.
	if s.BucketSeconds != 300 || len(s.Buckets) != 2 || !slices.Equal(s.Fields, []client.SeriesFields{"speed", "soc"}) {
		t.Fatalf("series %s", resp.Body)
	}
	if !s.InitialTimestamp.Equal(time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)) || !s.FinalTimestamp.Equal(time.Date(2024, 6, 1, 12, 9, 0, 0, time.UTC)) {
		t.Fatalf("range defaults to the vehicle's span: %s", resp.Body)
	}
	b := s.Buckets[0] // 12:00..12:04: speeds 0,10,20,null,10; soc 0..4
	if b.Count != 5 || b.Speed == nil || b.Speed.Min != 0 || b.Speed.Max != 20 || b.Speed.Avg != 10 || b.Speed.First != 0 || b.Speed.Last != 10 ||
		b.Soc == nil || b.Soc.Avg != 2 || b.Odometer != nil {
		t.Fatalf("bucket 0: %s", resp.Body)
	}
	// One key per requested field, null when it has no value; absent when not asked for.
	status, _, body := e.do(t, "GET", "/api/v1/vehicles/veh1/series/?fields=speed&initial_timestamp=2024-06-01T12:03&final_timestamp=2024-06-01T12:03", "", nil)
	var raw struct {
		Buckets []map[string]json.RawMessage `json:"buckets"`
	}
	if err := json.Unmarshal(body, &raw); status != 200 || err != nil || len(raw.Buckets) != 1 {
		t.Fatalf("status %d: %s", status, body)
	}
	if v, ok := raw.Buckets[0]["speed"]; !ok || string(v) != "null" || len(raw.Buckets[0]) != 3 {
		t.Fatalf("a bucket whose only speed is null: %s", body)
	}

	for q, fields := range map[string][]string{
		"?max_points=0":               {"max_points"},
		"?max_points=10001":           {"max_points"},
		"?max_points=abc":             {"max_points"},
		"?fields=speed,rpm":           {"fields"},
		"?initial_timestamp=tomorrow": {"initial_timestamp"},
		"?timezone=Mars/Base":         {"timezone"},
		"?initial_timestamp=2024-06-02&final_timestamp=2024-06-01": {"initial_timestamp"},
	} {
		status, _, body := e.do(t, "GET", "/api/v1/vehicles/veh1/series/"+q, "", nil)
		if status != 400 {
			t.Errorf("%s: status %d, want 400: %s", q, status, body)
			continue
		}
		if got := fieldNames(problem(t, body)); !slices.Equal(got, fields) {
			t.Errorf("%s: names %v, want %v", q, got, fields)
		}
	}
	if status, _, body := e.do(t, "GET", "/api/v1/vehicles/nope/series/", "", nil); status != 404 {
		t.Errorf("unknown vehicle: %d %s", status, body)
	}
	if status, _, body := e.do(t, "GET", "/api/v1/vehicles/veh1/series", "", nil); status != 200 {
		t.Errorf("without the trailing slash: %d %s", status, body)
	}
	// A range past the vehicle's data is empty, not an error.
	status, _, body = e.do(t, "GET", "/api/v1/vehicles/veh1/series/?initial_timestamp=2030-01-01", "", nil)
	if status != 200 || !strings.Contains(string(body), `"buckets":[]`) {
		t.Errorf("range past the data: %d %s", status, body)
	}
}
