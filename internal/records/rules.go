package records

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// The contract's field rules, each written once. DecodeJSON (create bodies), csvrows (upload
// files), ParseFilter (the vehicle_id filter) and ingest (upload names) call these, so a rule
// cannot differ between paths; the schema's CHECK constraints (db/migrations) repeat the
// limits as the database's own last line of defence. A rule's error names no field: each
// caller says which field it checked.

var (
	errNegative = errors.New("must be >= 0")
	errSOC      = fmt.Errorf("must be an integer between %d and %d", MinSOC, MaxSOC)

	errShiftStateLen = fmt.Errorf("must be at most %d characters", MaxShiftStateLen)
)

// CheckText is the rule of a required text field (vehicle_id, file_name): 1..maxLen
// characters of valid UTF-8 without NUL. PostgreSQL text can hold neither NUL nor invalid
// UTF-8, so both are the client's error, never a database fault.
func CheckText(v string, maxLen int) error {
	if v == "" {
		return errors.New("is required")
	}
	if err := CheckChars(v); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(v); n > maxLen {
		return fmt.Errorf("is %d characters long; the maximum is %d", n, maxLen)
	}
	return nil
}

// CheckShiftState is the rule of a present shift_state: at most MaxShiftStateLen characters
// of valid UTF-8 without NUL.
func CheckShiftState(v string) error {
	if err := CheckChars(v); err != nil {
		return err
	}
	if utf8.RuneCountInString(v) > MaxShiftStateLen {
		return errShiftStateLen
	}
	return nil
}

// CheckChars is the rule of any text stored or compared in PostgreSQL, which holds neither
// invalid UTF-8 nor NUL: a query parameter, a cell, a name.
func CheckChars(v string) error {
	switch {
	case !utf8.ValidString(v):
		return errors.New("is not valid UTF-8")
	case strings.IndexByte(v, 0) >= 0:
		return errors.New("contains a NUL character")
	}
	return nil
}

// CheckSpeed is the rule of a present speed (km/h).
func CheckSpeed(v float64) error {
	if v < 0 {
		return errNegative
	}
	return nil
}

// CheckOdometer is the rule of the odometer (km).
func CheckOdometer(v float64) error {
	if v < 0 {
		return errNegative
	}
	return nil
}

// CheckSOC is the rule of the state of charge: an integral number of percent, so 58.0 is
// accepted as 58.
func CheckSOC(v float64) error {
	if v != math.Trunc(v) || v < MinSOC || v > MaxSOC {
		return errSOC
	}
	return nil
}
