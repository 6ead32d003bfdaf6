package csvrows

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// paddedRow is a valid row of exactly n bytes that reads as baseRow: white space around a
// number is ignored, so the speed cell takes the padding.
func paddedRow(n int) string {
	const head, tail = "2024-06-01T12:00:00Z,", "55.5,1234.5,80,10.5,D"
	return head + strings.Repeat(" ", n-len(head)-len(tail)) + tail
}

// quotedRow is a valid row of exactly n bytes whose quoted speed cell spans lines; it
// returns the row and the line ends inside it.
func quotedRow(n int) (string, int) {
	const head, tail = `2024-06-01T12:00:00Z,"`, `55.5",1234.5,80,10.5,D`
	pad := n - len(head) - len(tail)
	return head + strings.Repeat(strings.Repeat(" ", 15)+"\n", pad/16) + strings.Repeat(" ", pad%16) + tail, pad / 16
}

// paddedHeader is a valid header of exactly n bytes: names are trimmed.
func paddedHeader(n int) string {
	h := strings.TrimSuffix(header, "\n")
	return strings.Repeat(" ", n-len(h)) + h
}

func TestRecordSize(t *testing.T) {
	const (
		max  = MaxRecordSize
		next = "2024-06-01T13:00:00Z,1,2,3,4,D"
	)
	// what one record reads as: the line it starts on and its row error message ("" = valid).
	type rec struct {
		line int
		msg  string
	}
	tooLong := func(line int) rec { return rec{line, rowTooLong} }
	valid := func(line int) rec { return rec{line, ""} }

	quotedMax, quotedMaxLines := quotedRow(max)
	quotedOver, quotedOverLines := quotedRow(max + 1)
	// Line ends every 16 or 32 bytes: enough of them, and ReadSlice stops at each.
	lfs := strings.Repeat("0123456789abcde\n", max/16)                        // max bytes, max/16 line ends
	crlfs := strings.Repeat("a\r\nb\"\",c"+strings.Repeat("x", 24), max/32+1) // escaped quotes, commas, CRLF
	cells := "2024-06-01T12:00:00Z,1,2,3,4,"                                  // a row up to its shift_state cell
	overQuoted := cells + `"` + lfs + `"`                                     // over the limit, across max/16+1 lines
	overCRLF := cells + `"` + crlfs + `"`                                     // over the limit, across max/32+2 lines
	overUnquoted := cells + strings.Repeat("x", max-len(cells))               // max bytes so far

	tests := []struct {
		name    string
		input   string
		want    []rec
		errLine int    // 0: reading ends with io.EOF
		errMsg  string // in the *FormatError
	}{
		{"exactly the limit", header + paddedRow(max) + "\n" + next + "\n", []rec{valid(2), valid(3)}, 0, ""},
		{"one byte over", header + paddedRow(max+1) + "\n" + next + "\n", []rec{tooLong(2), valid(3)}, 0, ""},
		{"exactly the limit, CRLF", header + paddedRow(max) + "\r\n" + next + "\r\n", []rec{valid(2), valid(3)}, 0, ""},
		{"one byte over, CRLF", header + paddedRow(max+1) + "\r\n" + next + "\r\n", []rec{tooLong(2), valid(3)}, 0, ""},
		{"exactly the limit, last without line end", header + next + "\n" + paddedRow(max), []rec{valid(2), valid(3)}, 0, ""},
		{"over the limit, last without line end", header + next + "\n" + paddedRow(max+1), []rec{valid(2), tooLong(3)}, 0, ""},
		{"far over the limit", header + paddedRow(3*max) + "\n" + next, []rec{tooLong(2), valid(3)}, 0, ""},
		{"exactly the limit, quoted across lines", header + quotedMax + "\n" + next, []rec{valid(2), valid(3 + quotedMaxLines)}, 0, ""},
		{"one byte over, quoted across lines", header + quotedOver + "\n" + next, []rec{tooLong(2), valid(3 + quotedOverLines)}, 0, ""},
		{"quoted line ends", header + overQuoted + "\n" + next + "\n", []rec{tooLong(2), valid(3 + max/16)}, 0, ""},
		{"quoted CRLF, quotes and commas", header + overCRLF + "\r\n" + next + "\r\n", []rec{tooLong(2), valid(3 + max/32 + 1)}, 0, ""},
		{"quoted, last without line end", header + next + "\n" + overQuoted, []rec{valid(2), tooLong(3)}, 0, ""},
		{"two in a row, then blank lines", header + "\n" + overQuoted + "\n" + paddedRow(max+1) + "\n\n" + next, []rec{tooLong(3), tooLong(4 + max/16), valid(6 + max/16)}, 0, ""},
		// Size comes first, whatever the cells hold: the cells are not even looked at.
		{"cell count at the limit", header + strings.Repeat(",", max) + "\n", []rec{{2, fmt.Sprintf("row has %d cells, the header has 6", max+1)}}, 0, ""},
		{"cell count over the limit", header + strings.Repeat(",", max+1) + "\n" + next, []rec{tooLong(2), valid(3)}, 0, ""},
		{"NUL and invalid UTF-8", header + "\x00\xff," + paddedRow(max) + "\n" + next, []rec{tooLong(2), valid(3)}, 0, ""},
		// Quoting is checked to the record's end: it alone says where the next record starts.
		{"stray quote past the limit", header + next + "\n" + overUnquoted + "x\"x\n" + next, []rec{valid(2)}, 3, "stray quote"},
		{"text after a closing quote past the limit", header + overQuoted + "x\n" + next, nil, 2 + max/16, "after the closing quote"},
		{"lone CR past the limit", header + overUnquoted + "x\rx\n" + next, nil, 2, "not followed by a line feed"},
		{"unterminated quote past the limit", header + next + "\n" + cells + `"` + lfs, []rec{valid(2)}, 3, "never closed"},
		// The header.
		{"header at the limit", paddedHeader(max) + "\n" + next, []rec{valid(2)}, 0, ""},
		{"header over the limit", paddedHeader(max+1) + "\n" + next, nil, 1, headerTooLong},
		{"header over the limit, CRLF, after blank lines", "\n\r\n" + paddedHeader(max+1) + "\r\n" + next, nil, 3, headerTooLong},
		{"header over the limit without line end", paddedHeader(max + 1), nil, 1, headerTooLong},
		{"header over the limit, quoted across lines", `"` + lfs + `",` + header + next, nil, 1, headerTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Where the reads cut the record must not matter.
			for _, size := range []int{1021, readBufferSize} {
				got, err := readAllSize(t, tt.input, "veh1", size)
				var ferr *FormatError
				switch {
				case tt.errLine == 0 && err != nil:
					t.Fatalf("buffer %d: error %v, want none", size, err)
				case tt.errLine != 0 && !errors.As(err, &ferr):
					t.Fatalf("buffer %d: error %v (%T), want a *FormatError", size, err, err)
				case ferr != nil && (ferr.Line != tt.errLine || !strings.Contains(ferr.Message, tt.errMsg)):
					t.Errorf("buffer %d: error %+v, want line %d and %q", size, ferr, tt.errLine, tt.errMsg)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("buffer %d: %d results, want %d", size, len(got), len(tt.want))
				}
				for i, w := range tt.want {
					res := got[i]
					switch {
					case w.msg == "" && res.rowErr != nil:
						t.Errorf("buffer %d: result %d: row error %+v, want a valid row on line %d", size, i, res.rowErr, w.line)
					case w.msg == "" && res.row.Line != w.line:
						t.Errorf("buffer %d: result %d: row on line %d, want %d", size, i, res.row.Line, w.line)
					case w.msg != "":
						checkRowError(t, res.rowErr, w.line, "<nil>", w.msg)
						if res.rowErr != nil && res.rowErr.Value != "" {
							t.Errorf("buffer %d: result %d: value %.40q, want none", size, i, res.rowErr.Value)
						}
					}
				}
			}
		})
	}
}

func TestRecordSizeMessages(t *testing.T) {
	if MaxRecordSize != 1<<20 {
		t.Skip("the messages below name 1 MiB")
	}
	if rowTooLong != "row is longer than 1 MiB" || headerTooLong != "header is longer than 1 MiB" {
		t.Errorf("messages %q, %q", rowTooLong, headerTooLong)
	}
	if got := sizeText(1000); got != "1000 bytes" {
		t.Errorf("sizeText(1000) = %q", got)
	}
}

// patternReader yields n bytes repeating pattern, without holding them.
type patternReader struct {
	pattern string
	n       int64
	off     int
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	for n := 0; n < len(p); {
		c := copy(p[n:], r.pattern[r.off:])
		n, r.off = n+c, (r.off+c)%len(r.pattern)
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// TestRecordSizeMemory reads past records of 4 and 64 MiB: what the reader allocates must not
// grow with the record's length.
func TestRecordSizeMemory(t *testing.T) {
	const next = "2024-06-01T13:00:00Z,1,2,3,4,D\n"
	for _, shape := range []struct {
		name          string
		open, pattern string
		close         string
	}{
		{"unquoted", "2024-06-01T12:00:00Z,1,2,3,4,", "0123456789abcdef", "\n"},
		{"quoted across lines", "2024-06-01T12:00:00Z,1,2,3,4,\"", "a,\"\"b\r\n" + strings.Repeat("0123456789abcdef", 63) + "01234567\n", "\"\r\n"}, // 1 KiB
	} {
		t.Run(shape.name, func(t *testing.T) {
			alloc := func(size int64) uint64 {
				t.Helper()
				in := io.MultiReader(strings.NewReader(header+shape.open), &patternReader{pattern: shape.pattern, n: size},
					strings.NewReader(shape.close+next))
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				r := NewReader(in, "veh1")
				_, rowErr, err := r.Next()
				if err != nil || rowErr == nil || rowErr.Line != 2 || rowErr.Message != rowTooLong {
					t.Fatalf("%d bytes: got %+v, %v; want a row error on line 2", size, rowErr, err)
				}
				row, rowErr, err := r.Next()
				lines := int(size/int64(len(shape.pattern))) * strings.Count(shape.pattern, "\n")
				if err != nil || rowErr != nil || row.Line != 3+lines {
					t.Fatalf("%d bytes: next record %+v, %+v, %v; want a valid row on line %d", size, row, rowErr, err, 3+lines)
				}
				runtime.ReadMemStats(&after)
				return after.TotalAlloc - before.TotalAlloc
			}
			const small, large = 4 << 20, 64 << 20
			a4, a64 := alloc(small), alloc(large)
			t.Logf("allocated %d KiB for a 4 MiB record, %d KiB for a 64 MiB one", a4>>10, a64>>10)
			// Both hold about 6 MiB: the record buffer growing to the limit, once.
			if a64 > large/4 {
				t.Errorf("reading past a 64 MiB record allocated %d MiB", a64>>20)
			}
			if a64 > a4+1<<20 {
				t.Errorf("allocations grow with the record: %d KiB for 4 MiB, %d KiB for 64 MiB", a4>>10, a64>>10)
			}
		})
	}
}
