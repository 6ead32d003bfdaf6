package timeparse

import (
	"fmt"
	"strings"
	"sync"
	"time"

	// The time zone database is compiled in (about 450 KB) so that the timezone parameter
	// works the same in a distroless or scratch container without /usr/share/zoneinfo as on
	// a developer machine. The system copy, when present, is still preferred by the runtime.
	_ "time/tzdata"
)

// maxLocationName is far above the longest IANA name (about 32 bytes) and keeps absurd
// input away from the file system.
const maxLocationName = 64

// locations caches loaded zones: time.LoadLocation reads and parses a file on every call,
// and a timezone parameter can come with every request. Only valid names are stored, so
// the cache is bounded by the size of the database.
var locations sync.Map // name -> *time.Location

// LoadLocation returns the time zone with the given IANA name, such as "Europe/Berlin" or
// "UTC". Names that are not IANA names are rejected even where time.LoadLocation would
// accept them: the empty string and "Local" (which mean UTC and the server's zone there),
// absolute or relative paths and anything with unusual characters.
func LoadLocation(name string) (*time.Location, error) {
	if loc, ok := locations.Load(name); ok {
		return loc.(*time.Location), nil
	}
	if err := checkLocationName(name); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: expected an IANA name such as Europe/Berlin", name)
	}
	locations.Store(name, loc)
	return loc, nil
}

func checkLocationName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty time zone name: expected an IANA name such as Europe/Berlin")
	case len(name) > maxLocationName:
		return fmt.Errorf("time zone name %q... is too long", name[:maxLocationName])
	case name == "Local":
		return fmt.Errorf(`time zone "Local" is not allowed: expected an IANA name such as Europe/Berlin`)
	case name[0] == '/' || name[len(name)-1] == '/' || strings.Contains(name, "..") || strings.Contains(name, "//"):
		return fmt.Errorf("invalid time zone name %q: expected an IANA name such as Europe/Berlin", name)
	}
	// IANA names use only these characters (e.g. America/Port-au-Prince, Etc/GMT+5).
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '/' || c == '_' || c == '-' || c == '+') {
			return fmt.Errorf("invalid time zone name %q: expected an IANA name such as Europe/Berlin", name)
		}
	}
	return nil
}
