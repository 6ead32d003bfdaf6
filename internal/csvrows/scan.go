package csvrows

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Why not encoding/csv: it cannot report a lone CR (it keeps it as data), it skips a BOM
// only if asked and then not at all, its Reader.FieldPos reports field positions but errors
// such as an unterminated quote name the line where reading stopped, and ReadRecord cannot
// skip an oversized record without holding it. The grammar is small enough to scan by hand,
// which is also faster and lets one buffer be reused for every record.

// MaxRecordSize is the longest record (header or row), in bytes without its line end: the
// contract's "Record size". A longer row is invalid whatever its cells hold, a longer header
// makes the file a 400. The scanner reads past such a record keeping at most one read buffer
// of it, so a file holding one giant value cannot exhaust memory.
//
// Its quoting is still checked to its end, because only the quoting says where the record
// ends and so where the next one starts: a stray quote, text after a closing quote, a lone CR
// or an unterminated quote in an oversized record makes the file malformed, as anywhere else.
const MaxRecordSize = 1 << 20

const readBufferSize = 64 << 10

var bom = []byte("\xEF\xBB\xBF")

// scanner splits an RFC 4180 stream into records. It holds one record at a time: the bytes
// of its fields, concatenated, and where each field ends.
type scanner struct {
	br      *bufio.Reader
	line    int  // line feeds consumed so far: the current line is line+1
	started bool // the BOM has been looked for
	err     error

	rec       []byte // the fields of the current record, concatenated, quotes removed
	ends      []int  // end of each stored field in rec
	nfields   int    // fields in the current record, stored or not
	maxFields int    // store at most this many field ends (0: all); the rest are only counted
	maxRecord int    // MaxRecordSize; the fuzz test lowers it so that the fuzzer reaches it
	tooLong   bool   // the current record is longer than maxRecord; rec and ends are not kept
}

// States of the record scanner.
const (
	stRecordStart   = iota // nothing of the record read yet; blank lines are skipped here
	stRecordStartCR        // a CR at the start of a record: only a blank CRLF line is valid
	stFieldStart           // at the start of a field
	stUnquoted             // inside an unquoted field
	stQuoted               // inside a quoted field
	stQuotedCR             // a CR inside a quoted field
	stQuoteSeen            // a quote inside a quoted field: an escaped quote or the closing one
	stCR                   // a CR outside quotes: a LF must follow
)

// newScanner reads r through a buffer of size bytes (tests use tiny ones to cut records
// at every possible place).
func newScanner(r io.Reader, size int) *scanner {
	return &scanner{br: bufio.NewReaderSize(r, size), maxRecord: MaxRecordSize}
}

// field returns the i-th stored field of the current record. The slice is valid until the
// next call of next.
func (s *scanner) field(i int) []byte {
	start := 0
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.rec[start:s.ends[i]]
}

func (s *scanner) endField() {
	if s.maxFields == 0 || s.nfields < s.maxFields {
		s.ends = append(s.ends, len(s.rec))
	}
	s.nfields++
}

// formatError ends the scan: a malformed file cannot be read any further.
func (s *scanner) formatError(line int, msg string) error {
	s.err = &FormatError{Line: line, Message: msg}
	return s.err
}

// next reads the next non-blank record and returns the line it starts on. It returns io.EOF
// after the last record, a *FormatError for malformed CSV, and any read error; all of these
// are final. A record longer than maxRecord is returned with tooLong set and its fields
// not kept.
func (s *scanner) next() (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if !s.started {
		s.started = true
		if b, _ := s.br.Peek(len(bom)); bytes.Equal(b, bom) {
			_, _ = s.br.Discard(len(bom))
		}
	}
	s.rec, s.ends, s.nfields, s.tooLong = s.rec[:0], s.ends[:0], 0, false
	state, start, quoteLine := stRecordStart, 0, 0
	// Bytes read by this call before the current chunk, and where the record began: the
	// size limit counts raw bytes, so that separators and quotes count too.
	read, recordOffset := 0, 0
	for {
		// ReadSlice stops after a LF, so a record can only end at the last byte of chunk.
		chunk, err := s.br.ReadSlice('\n')
		for i := 0; i < len(chunk); i++ {
			c := chunk[i]
			switch state {
			case stRecordStart:
				switch c {
				case '\n':
					s.line++
				case '\r':
					state = stRecordStartCR
				default:
					start, state, recordOffset = s.line+1, stFieldStart, read+i
					i-- // read c again as the start of a field
				}
			case stRecordStartCR:
				if c != '\n' {
					return 0, s.formatError(s.line+1, loneCR)
				}
				s.line++
				state = stRecordStart
			case stFieldStart:
				switch c {
				case '"':
					state, quoteLine = stQuoted, s.line+1
				case ',':
					s.endField()
				case '\n':
					s.endField()
					s.line++
					return s.endRecord(start, read+i-recordOffset), nil
				case '\r':
					state = stCR
				default:
					state = stUnquoted
					i--
				}
			case stUnquoted:
				j := i
				for j < len(chunk) && !isUnquotedSpecial(chunk[j]) {
					j++
				}
				s.rec = append(s.rec, chunk[i:j]...)
				if j == len(chunk) {
					i = j
					break
				}
				i = j
				switch chunk[j] {
				case ',':
					s.endField()
					state = stFieldStart
				case '\n':
					s.endField()
					s.line++
					return s.endRecord(start, read+i-recordOffset), nil
				case '\r':
					state = stCR
				case '"':
					return 0, s.formatError(s.line+1, "stray quote in an unquoted value (quote the whole value and double the quote)")
				}
			case stQuoted:
				j := i
				for j < len(chunk) && !isQuotedSpecial(chunk[j]) {
					j++
				}
				s.rec = append(s.rec, chunk[i:j]...)
				if j == len(chunk) {
					i = j
					break
				}
				i = j
				switch chunk[j] {
				case '"':
					state = stQuoteSeen
				case '\r':
					state = stQuotedCR
				case '\n':
					s.rec = append(s.rec, '\n')
					s.line++
				}
			case stQuotedCR:
				if c == '\n' { // CRLF inside quotes is stored as LF
					s.rec = append(s.rec, '\n')
					s.line++
				} else { // a lone CR inside quotes is data
					s.rec = append(s.rec, '\r')
					i--
				}
				state = stQuoted
			case stQuoteSeen:
				switch c {
				case '"':
					s.rec = append(s.rec, '"')
					state = stQuoted
				case ',':
					s.endField()
					state = stFieldStart
				case '\n':
					s.endField()
					s.line++
					return s.endRecord(start, read+i-recordOffset), nil
				case '\r':
					state = stCR
				default:
					return 0, s.formatError(s.line+1, "unexpected text after the closing quote of a quoted value")
				}
			case stCR:
				if c != '\n' {
					return 0, s.formatError(s.line+1, loneCR)
				}
				s.endField()
				s.line++
				return s.endRecord(start, read+i-1-recordOffset), nil // without the CR
			}
		}
		read += len(chunk)
		if state != stRecordStart && state != stRecordStartCR {
			size := read - recordOffset
			if state == stCR {
				size-- // a CR outside quotes belongs to the line end (or is a fault), not to the record
			}
			if size > s.maxRecord {
				// Read on to the record's end, but drop what is stored after every chunk, so
				// that memory stays near the limit whatever the record's length.
				s.tooLong = true
				s.rec, s.ends = s.rec[:0], s.ends[:0]
			}
		}
		switch {
		case err == nil || errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			return s.atEOF(state, start, quoteLine, read-recordOffset)
		default:
			s.err = err
			return 0, err
		}
	}
}

// atEOF ends the last record, which has no line end.
func (s *scanner) atEOF(state, start, quoteLine, size int) (int, error) {
	switch state {
	case stRecordStart:
		s.err = io.EOF
		return 0, io.EOF
	case stRecordStartCR, stCR:
		return 0, s.formatError(s.line+1, loneCR)
	case stQuoted, stQuotedCR:
		return 0, s.formatError(quoteLine, "quoted value starting on this line is never closed")
	default: // stFieldStart, stUnquoted, stQuoteSeen
		s.endField()
		s.err = io.EOF // for the next call
		return s.endRecord(start, size), nil
	}
}

// endRecord notes whether a complete record of size bytes (without its line end) is too
// long and returns start. Longer records are mostly caught earlier, after a chunk read; one
// that ends in the chunk that takes it past the limit only here.
func (s *scanner) endRecord(start, size int) int {
	if size > s.maxRecord {
		s.tooLong = true
	}
	return start
}

const loneCR = "carriage return (CR) not followed by a line feed (LF)"

// Messages for records over MaxRecordSize, derived from it so that the limit stays in one place.
var (
	rowTooLong    = "row is longer than " + sizeText(MaxRecordSize)
	headerTooLong = "header is longer than " + sizeText(MaxRecordSize)
)

// sizeText writes a size in bytes as people read it: "1 MiB", or "1000 bytes".
func sizeText(n int) string {
	if n%(1<<20) == 0 {
		return strconv.Itoa(n>>20) + " MiB"
	}
	return strconv.Itoa(n) + " bytes"
}

func isUnquotedSpecial(c byte) bool { return c == ',' || c == '"' || c == '\r' || c == '\n' }

func isQuotedSpecial(c byte) bool { return c == '"' || c == '\r' || c == '\n' }
