package records

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cursor positions a page by the sort key of the row next to it: the page right after the
// row (Before false) or right before it. Unlike an offset it costs the same at the
// millionth row as at the first, and inserts elsewhere do not shift it.
type Cursor struct {
	Before bool
	Key    []any // the row's value of each ordering field (nil for null), in the ordering's order
	ID     int64 // the row's id, the tie-break
}

// errBadCursor is what the client hears about any cursor the codec refuses: one message, so
// that it tells a forger nothing.
var errBadCursor = errors.New("not a cursor this server made for these filters and this ordering")

// CursorCodec turns cursors into opaque tokens and back. A token carries an HMAC over its
// payload and the filter and ordering it was made for, so an altered token, a made-up one or
// one sent with other filters is refused. Every replica must share the key (the service
// keeps it in the database).
type CursorCodec struct {
	key []byte
}

// NewCursorCodec returns a codec signing with key.
func NewCursorCodec(key []byte) *CursorCodec {
	return &CursorCodec{key: append([]byte(nil), key...)}
}

const (
	cursorVersion = 1
	cursorMACLen  = 16 // 128 bits of HMAC-SHA256: plenty against forgery, short in a URL
)

// cursorPayload is the token's body before the MAC; short keys keep URLs short.
type cursorPayload struct {
	V  int               `json:"v"`
	B  bool              `json:"b,omitempty"`
	K  []json.RawMessage `json:"k"`
	ID int64             `json:"i"`
}

// Encode returns the token for c, valid only with f and o.
func (cc *CursorCodec) Encode(c Cursor, f Filter, o Order) string {
	p := cursorPayload{V: cursorVersion, B: c.Before, ID: c.ID, K: make([]json.RawMessage, len(c.Key))}
	for i, v := range c.Key {
		p.K[i] = encodeKeyValue(v)
	}
	body, _ := json.Marshal(p) // only numbers, strings and null: cannot fail
	return base64.RawURLEncoding.EncodeToString(append(body, cc.mac(body, f, o)...))
}

// Decode checks a token against f and o and returns its cursor.
func (cc *CursorCodec) Decode(token string, f Filter, o Order) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) <= cursorMACLen {
		return Cursor{}, errBadCursor
	}
	body, sum := raw[:len(raw)-cursorMACLen], raw[len(raw)-cursorMACLen:]
	if !hmac.Equal(sum, cc.mac(body, f, o)) {
		return Cursor{}, errBadCursor
	}
	var p cursorPayload
	if err := json.Unmarshal(body, &p); err != nil || p.V != cursorVersion {
		return Cursor{}, errBadCursor
	}
	fields := o.keyFields()
	if len(p.K) != len(fields) {
		return Cursor{}, errBadCursor
	}
	c := Cursor{Before: p.B, ID: p.ID, Key: make([]any, len(fields))}
	for i, name := range fields {
		v, err := decodeKeyValue(name, p.K[i])
		if err != nil {
			return Cursor{}, errBadCursor
		}
		c.Key[i] = v
	}
	return c, nil
}

func (cc *CursorCodec) mac(body []byte, f Filter, o Order) []byte {
	m := hmac.New(sha256.New, cc.key)
	m.Write([]byte(canonical(f, o)))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)[:cursorMACLen]
}

// canonical renders what a cursor is bound to: the parsed filter (instants, not their
// spelling, so the same range in another time zone still matches) and the ordering.
func canonical(f Filter, o Order) string {
	var b strings.Builder
	if f.VehicleID != nil {
		b.WriteString("v" + strconv.Quote(*f.VehicleID))
	}
	for _, t := range []*time.Time{f.From, f.To} {
		b.WriteByte(';')
		if t != nil {
			b.WriteString(strconv.FormatInt(t.UnixMicro(), 10))
		}
	}
	for _, of := range o {
		b.WriteByte(';')
		if of.Desc {
			b.WriteByte('-')
		}
		b.WriteString(of.Field)
	}
	return b.String()
}

// keyFields are the ordering's fields up to (without) id: id is unique, so nothing after it
// matters, and the cursor carries it anyway.
func (o Order) keyFields() []string {
	var out []string
	for _, f := range o {
		if f.Field == "id" {
			break
		}
		out = append(out, f.Field)
	}
	return out
}

// forOrder re-keys c, made for o, for q: o with some fields dropped (Order.forScope).
func (c Cursor) forOrder(o, q Order) Cursor {
	vals := map[string]any{}
	for i, f := range o.keyFields() {
		vals[f] = c.Key[i]
	}
	out := Cursor{Before: c.Before, ID: c.ID}
	for _, f := range q.keyFields() {
		out.Key = append(out.Key, vals[f])
	}
	return out
}

// CursorAt returns the cursor for the page after (or before) r under o.
func CursorAt(r *Record, o Order, before bool) Cursor {
	fields := o.keyFields()
	c := Cursor{Before: before, ID: r.ID, Key: make([]any, len(fields))}
	for i, name := range fields {
		c.Key[i] = fieldValue(r, name)
	}
	return c
}

// fieldValue is r's value of an ordering field in the Go type the cursor carries: string,
// time.Time, float64 or int64, or nil for null.
func fieldValue(r *Record, name string) any {
	switch name {
	case "vehicle_id":
		return r.VehicleID
	case "timestamp":
		return r.Timestamp
	case "speed":
		if r.Speed == nil {
			return nil
		}
		return *r.Speed
	case "odometer":
		return r.Odometer
	case "soc":
		return int64(r.SOC)
	case "elevation":
		return r.Elevation
	case "shift_state":
		if r.ShiftState == nil {
			return nil
		}
		return *r.ShiftState
	}
	panic("records: no cursor value for field " + name) // the whitelist and this switch disagree
}

func encodeKeyValue(v any) json.RawMessage {
	var b []byte
	switch v := v.(type) {
	case nil:
		b = []byte("null")
	case time.Time: // microseconds since the epoch: exact, as stored
		b = strconv.AppendInt(nil, v.UnixMicro(), 10)
	case float64:
		b = strconv.AppendFloat(nil, v, 'g', -1, 64)
	case int64:
		b = strconv.AppendInt(nil, v, 10)
	case string:
		b, _ = json.Marshal(v)
	default:
		panic(fmt.Sprintf("records: cursor value of type %T", v))
	}
	return b
}

func decodeKeyValue(field string, raw json.RawMessage) (any, error) {
	if string(raw) == "null" {
		if !nullable[field] {
			return nil, errBadCursor
		}
		return nil, nil
	}
	switch field {
	case "vehicle_id", "shift_state":
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case "timestamp":
		n, err := strconv.ParseInt(string(raw), 10, 64)
		return time.UnixMicro(n).UTC(), err
	case "soc":
		return strconv.ParseInt(string(raw), 10, 64)
	default:
		return strconv.ParseFloat(string(raw), 64)
	}
}

// nullable are the ordering fields that may be null.
var nullable = map[string]bool{"speed": true, "shift_state": true}
