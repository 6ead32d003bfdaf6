package timeparse

import (
	"strings"
	"testing"
)

func TestLoadLocationAccepts(t *testing.T) {
	for _, name := range []string{
		"Europe/Berlin",
		"UTC",
		"America/Argentina/Buenos_Aires",
		"America/Port-au-Prince",
		"Etc/GMT+5",
		"Etc/GMT-14",
	} {
		t.Run(name, func(t *testing.T) {
			loc, err := LoadLocation(name)
			if err != nil {
				t.Fatalf("LoadLocation(%q) error: %v", name, err)
			}
			if got := loc.String(); got != name {
				t.Errorf("LoadLocation(%q) = %q, want %q", name, got, name)
			}
			again, err := LoadLocation(name)
			if err != nil || again != loc {
				t.Errorf("second LoadLocation(%q) = %p, %v; want the cached %p", name, again, err, loc)
			}
		})
	}
}

func TestLoadLocationRejects(t *testing.T) {
	tests := []struct {
		name    string
		wantMsg string
	}{
		{"", "empty time zone name"},
		{"Local", `"Local" is not allowed`},
		{"/etc/passwd", "invalid time zone name"},
		{"/usr/share/zoneinfo/Europe/Berlin", "invalid time zone name"},
		{"../../etc/passwd", "invalid time zone name"},
		{"Europe/../Europe/Berlin", "invalid time zone name"},
		{"Europe//Berlin", "invalid time zone name"},
		{"Europe/Berlin/", "invalid time zone name"},
		{`Europe\Berlin`, "invalid time zone name"},
		{"Europe/Berlin\x00", "invalid time zone name"},
		{" Europe/Berlin", "invalid time zone name"},
		{"Europe/Berlin.", "invalid time zone name"},
		{strings.Repeat("A", 65), "too long"},
		{"Mars/Olympus_Mons", "unknown time zone"},
		{"europe/berlin", "unknown time zone"},
		{"+02:00", "invalid time zone name"},
		{"Berlin", "unknown time zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := LoadLocation(tt.name)
			if err == nil {
				t.Fatalf("LoadLocation(%q) = %v, want an error", tt.name, loc)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("LoadLocation(%q) error = %q, want it to contain %q", tt.name, err, tt.wantMsg)
			}
		})
	}
}
