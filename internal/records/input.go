package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/timeparse"
)

// DecodeJSON reads a record to create from a JSON object and validates every field,
// reporting each bad one. id and unknown fields are ignored. A failure to read body (over
// the request's size limit, a broken connection) is returned as it is, not as bad JSON.
func DecodeJSON(body io.Reader) (Record, error) {
	rd := &readErrReader{r: body}
	dec := json.NewDecoder(rd)
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if rd.err != nil {
			return Record{}, fmt.Errorf("read body: %w", rd.err)
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return Record{}, apperr.Invalid("the body must be a JSON object")
		}
		if errors.Is(err, io.EOF) {
			return Record{}, apperr.Invalid("the body is empty; expected a JSON object")
		}
		return Record{}, apperr.Invalid("malformed JSON: " + err.Error())
	}
	if raw == nil {
		return Record{}, apperr.Invalid("the body must be a JSON object, not null")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if rd.err != nil {
			return Record{}, fmt.Errorf("read body: %w", rd.err)
		}
		return Record{}, apperr.Invalid("malformed JSON: unexpected data after the object")
	}

	var (
		r    Record
		errs []apperr.FieldError
	)
	bad := func(field, format string, args ...any) {
		errs = append(errs, apperr.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}

	if s, ok, err := jsonString(raw["vehicle_id"], false); err != nil {
		bad("vehicle_id", "%v", err)
	} else if !ok {
		bad("vehicle_id", "is required")
	} else if err := CheckText(s, MaxVehicleIDLen); err != nil {
		bad("vehicle_id", "%v", err)
	} else {
		r.VehicleID = s
	}

	if s, ok, err := jsonString(raw["timestamp"], false); err != nil {
		bad("timestamp", "%v", err)
	} else if !ok {
		bad("timestamp", "is required")
	} else if t, err := timeparse.ParseFile(strings.TrimSpace(s)); err != nil {
		bad("timestamp", "%v", err)
	} else {
		r.Timestamp = t
	}

	if v, ok, err := jsonNumber(raw["speed"], true); err != nil {
		bad("speed", "%v", err)
	} else if ok {
		if err := CheckSpeed(v); err != nil {
			bad("speed", "%v (got %v)", err, v)
		} else {
			v += 0 // -0 is stored as 0
			r.Speed = &v
		}
	}

	if v, ok, err := jsonNumber(raw["odometer"], false); err != nil {
		bad("odometer", "%v", err)
	} else if !ok {
		bad("odometer", "is required")
	} else if err := CheckOdometer(v); err != nil {
		bad("odometer", "%v (got %v)", err, v)
	} else {
		r.Odometer = v + 0
	}

	if v, ok, err := jsonNumber(raw["soc"], false); err != nil {
		bad("soc", "%v", err)
	} else if !ok {
		bad("soc", "is required")
	} else if err := CheckSOC(v); err != nil {
		bad("soc", "%v (got %v)", err, v)
	} else {
		r.SOC = int16(v)
	}

	if v, ok, err := jsonNumber(raw["elevation"], false); err != nil {
		bad("elevation", "%v", err)
	} else if !ok {
		bad("elevation", "is required")
	} else {
		r.Elevation = v
	}

	if s, ok, err := jsonString(raw["shift_state"], true); err != nil {
		bad("shift_state", "%v", err)
	} else if ok {
		if err := CheckShiftState(s); err != nil {
			bad("shift_state", "%v", err)
		} else {
			r.ShiftState = &s
		}
	}

	if len(errs) > 0 {
		names := make([]string, len(errs))
		for i, e := range errs {
			names[i] = e.Field
		}
		return Record{}, apperr.Invalid("invalid field(s): "+strings.Join(names, ", "), errs...)
	}
	return r, nil
}

// readErrReader remembers the first read error other than io.EOF, so that DecodeJSON can
// tell a body it could not read from a body that is not JSON.
type readErrReader struct {
	r   io.Reader
	err error
}

func (r *readErrReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

var jsonNull = []byte("null")

// jsonString decodes a string field; ok is false when the field is absent (or null and
// nullable).
func jsonString(raw json.RawMessage, nullable bool) (s string, ok bool, err error) {
	if raw == nil {
		return "", false, nil
	}
	if bytes.Equal(raw, jsonNull) {
		if nullable {
			return "", false, nil
		}
		return "", false, errors.New("must not be null")
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, errors.New("must be a string")
	}
	return s, true, nil
}

// jsonNumber decodes a finite number field; ok is false when absent (or null and nullable).
func jsonNumber(raw json.RawMessage, nullable bool) (v float64, ok bool, err error) {
	if raw == nil {
		return 0, false, nil
	}
	if bytes.Equal(raw, jsonNull) {
		if nullable {
			return 0, false, nil
		}
		return 0, false, errors.New("must not be null")
	}
	var n json.Number
	// json.Number also accepts a quoted number; a string is the wrong type here.
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '"' || json.Unmarshal(raw, &n) != nil {
		if nullable {
			return 0, false, errors.New("must be a number or null")
		}
		return 0, false, errors.New("must be a number")
	}
	v, err = strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false, fmt.Errorf("must be a finite number (got %s)", truncate(string(n), 40))
	}
	return v, true, nil
}
