package uploader

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vehicle-data/vehicle-data/gen/client"
)

// How much of a long list an error message shows.
const (
	maxShownRows    = 5
	maxShownFields  = 10
	maxShownIndexes = 20
	maxBodyInDetail = 200
)

// APIError is an answer of the server other than success.
type APIError struct {
	Op         string // the request: "upload_status", "upload_chunk 3", "finalize_upload"
	StatusCode int
	Detail     string // the server's detail, or a summary of a body that had none
	// Fields names bad fields or parameters (400).
	Fields []client.FieldError
	// RowsInvalid and Rows describe invalid CSV rows (422: at most 100 rows).
	RowsInvalid int64
	Rows        []client.RowError
	// MissingChunks lists chunks the server lacks (409 on finalize).
	MissingChunks []int32
	// Hint says what the user can do about it, when we know.
	Hint string
}

// Error is a few lines: the request, status and detail, then the first entries of each list.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: server answered %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	for i, f := range e.Fields {
		if i == maxShownFields {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Fields)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Message)
	}
	for i, r := range e.Rows {
		if i == maxShownRows {
			fmt.Fprintf(&b, "\n  ... and %d more invalid rows", max(e.RowsInvalid, int64(len(e.Rows)))-int64(i))
			break
		}
		b.WriteString("\n  ")
		b.WriteString(formatRowError(r))
	}
	if len(e.MissingChunks) > 0 {
		fmt.Fprintf(&b, "\n  missing chunks: %s", formatIndexes(e.MissingChunks))
	}
	if e.Hint != "" {
		b.WriteString("\n  ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// formatRowError reads like "line 17, column soc: soc must be ... (value "101")".
func formatRowError(r client.RowError) string {
	var b strings.Builder
	fmt.Fprintf(&b, "line %d", r.Line)
	if r.Column != nil {
		fmt.Fprintf(&b, ", column %s", *r.Column)
	}
	b.WriteString(": ")
	b.WriteString(r.Message)
	if r.Value != "" {
		fmt.Fprintf(&b, " (value %q)", r.Value)
	}
	return b.String()
}

// formatIndexes shows at most maxShownIndexes indexes, e.g. "[1 4 7]" or "[0 1 ... 19, 120 in all]".
func formatIndexes(idx []int32) string {
	shown := idx[:min(len(idx), maxShownIndexes)]
	parts := make([]string, len(shown))
	for i, v := range shown {
		parts[i] = strconv.Itoa(int(v))
	}
	s := strings.Join(parts, " ")
	if len(shown) < len(idx) {
		s += fmt.Sprintf(" ... (%d in all)", len(idx))
	}
	return "[" + s + "]"
}

// newAPIError builds the error for a non-success answer. p is the problem the generated
// client decoded, if it decoded one; otherwise the detail comes from the raw body.
func newAPIError(op string, status int, body []byte, p *client.Problem) *APIError {
	e := &APIError{Op: op, StatusCode: status}
	if p != nil {
		e.Detail = p.Detail
		if p.Errors != nil {
			e.Fields = *p.Errors
		}
		if e.Detail == "" {
			e.Detail = bodySummary(body)
		}
		return e
	}
	// Answers of other shapes (422, 409 on finalize) are filled in by the caller;
	// statuses the spec does not list (5xx, 429, a proxy's page) are not decoded at all.
	var generic struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &generic) == nil && generic.Detail != "" {
		e.Detail = generic.Detail
	} else {
		e.Detail = bodySummary(body)
	}
	return e
}

// firstProblem returns the first non-nil problem the generated client decoded.
func firstProblem(ps ...*client.Problem) *client.Problem {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

// bodySummary is the start of a body on one line, for answers without a JSON detail.
func bodySummary(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if !utf8.ValidString(s) {
		return ""
	}
	if len(s) > maxBodyInDetail {
		cut := maxBodyInDetail
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}
