package export

import (
	"errors"
	"mime"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"", CSV, false},
		{"csv", CSV, false},
		{"json", JSON, false},
		{"ndjson", NDJSON, false},
		{"xlsx", XLSX, false},
		{"CSV", "", true},
		{"xls", "", true},
		{" csv", "", true},
		{"csv,json", "", true},
		{"\x00", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFormat(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseFormat(%q) = %q, want an error", tt.in, got)
				}
				if !errors.Is(err, ErrUnknownFormat) {
					t.Errorf("error %v does not wrap ErrUnknownFormat", err)
				}
				if msg := err.Error(); !strings.Contains(msg, "csv, json, ndjson, xlsx") {
					t.Errorf("error %q does not name the allowed values", msg)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseFormat(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatProperties(t *testing.T) {
	tests := []struct {
		f           Format
		contentType string
		ext         string
	}{
		{CSV, "text/csv; charset=utf-8", "csv"},
		{JSON, "application/json", "json"},
		{NDJSON, "application/x-ndjson", "ndjson"},
		{XLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
		{Format("pdf"), "application/octet-stream", "bin"},
	}
	for _, tt := range tests {
		t.Run(string(tt.f), func(t *testing.T) {
			if got := tt.f.ContentType(); got != tt.contentType {
				t.Errorf("ContentType() = %q, want %q", got, tt.contentType)
			}
			if got := tt.f.Extension(); got != tt.ext {
				t.Errorf("Extension() = %q, want %q", got, tt.ext)
			}
		})
	}
}

func TestContentDisposition(t *testing.T) {
	tests := []struct {
		name      string
		vehicleID string
		f         Format
		want      string
	}{
		{"no vehicle", "", CSV, `attachment; filename="vehicle_data.csv"`},
		{"no vehicle xlsx", "", XLSX, `attachment; filename="vehicle_data.xlsx"`},
		{"uuid", "06ab31a9-b35d-4e47-8e44-9c35feb1bfae", JSON, `attachment; filename="06ab31a9-b35d-4e47-8e44-9c35feb1bfae.json"`},
		{"plain", "veh1", NDJSON, `attachment; filename="veh1.ndjson"`},
		{"quote", `a"b`, CSV, `attachment; filename="a_b.csv"`},
		{"backslash", `a\b`, CSV, `attachment; filename="a_b.csv"`},
		{"header injection", "x\r\nSet-Cookie: a=b", CSV, `attachment; filename="x__Set-Cookie__a_b.csv"`},
		{"control characters", "a\x00b\x1fc\x7f", CSV, `attachment; filename="a_b_c_.csv"`},
		{"path", "../../etc/passwd", CSV, `attachment; filename="___.._etc_passwd.csv"`},
		{"dot dot", "..", CSV, `attachment; filename="__.csv"`},
		{"hidden", ".bashrc", CSV, `attachment; filename="_bashrc.csv"`},
		{"windows path", `C:\Windows\x`, CSV, `attachment; filename="C__Windows_x.csv"`},
		{"semicolon and equals", `a; filename="evil.exe"`, CSV, `attachment; filename="a__filename__evil.exe_.csv"`},
		{"space and percent", "my car 100%", CSV, `attachment; filename="my_car_100_.csv"`},
		{
			"non-ASCII", "Fahrzeug-ä", CSV,
			`attachment; filename="Fahrzeug-_.csv"; filename*=UTF-8''Fahrzeug-%C3%A4.csv`,
		},
		{
			"CJK and emoji", "車両😀", XLSX,
			`attachment; filename="___.xlsx"; filename*=UTF-8''%E8%BB%8A%E4%B8%A1%F0%9F%98%80.xlsx`,
		},
		{
			"bidi override is dropped", "abc\u202etxt.exe", CSV,
			`attachment; filename="abc_txt.exe.csv"`,
		},
		{
			"non-ASCII with hostile ASCII", "ä\"\r\n/", CSV,
			`attachment; filename="_____.csv"; filename*=UTF-8''%C3%A4____.csv`,
		},
		{"invalid UTF-8", "a\xffb\xc3", CSV, `attachment; filename="a_b_.csv"`},
		{"long id is cut", strings.Repeat("x", 150), CSV, `attachment; filename="` + strings.Repeat("x", 100) + `.csv"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ContentDisposition(tt.vehicleID, tt.f)
			if got != tt.want {
				t.Errorf("ContentDisposition(%q) =\n%s\nwant\n%s", tt.vehicleID, got, tt.want)
			}
			if name := checkDisposition(t, got); !strings.HasPrefix(name, safeName(tt.vehicleID)) {
				t.Errorf("a client reads the file name %q, want it to start with %q", name, safeName(tt.vehicleID))
			}
		})
	}
}

// checkDisposition asserts what makes a header value safe and usable: ASCII
// without controls, parsable as a media type, naming a file without path.
// It returns the file name a client reads, the decoded filename* when present.
func checkDisposition(t *testing.T, header string) string {
	t.Helper()
	for i := 0; i < len(header); i++ {
		if c := header[i]; c < 0x20 || c >= 0x7f {
			t.Fatalf("header %q has byte %#x at %d", header, c, i)
		}
	}
	disposition, params, err := mime.ParseMediaType(header)
	if err != nil {
		t.Fatalf("mime.ParseMediaType(%q): %v", header, err)
	}
	if disposition != "attachment" {
		t.Errorf("disposition %q, want attachment", disposition)
	}
	// ParseMediaType prefers the decoded filename* over filename.
	name := params["filename"]
	if name == "" || strings.ContainsAny(name, "/\\\"") || strings.HasPrefix(name, ".") || !utf8.ValidString(name) {
		t.Errorf("file name %q from %q is unsafe", name, header)
	}
	return name
}

func FuzzContentDisposition(f *testing.F) {
	for _, s := range []string{"", "veh1", "../x", "a\"b\r\n", "ä", "\xff", "\u202e", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		for _, format := range Formats {
			checkDisposition(t, ContentDisposition(id, format))
		}
	})
}
