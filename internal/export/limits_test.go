package export

import "testing"

// Fits is the one reading of the XLSX row limit: the server's count check before any byte
// and the encoder's backstop use it, so 0 cannot mean "none" to one and "nothing" to the other.
func TestXLSXOptionsFits(t *testing.T) {
	tests := []struct {
		max  int
		rows int64
		want bool
	}{
		{0, 0, true}, {0, 1 << 40, true},
		{1, 0, true}, {1, 1, true}, {1, 2, false},
		{1_048_575, 1_048_575, true}, {1_048_575, 1_048_576, false},
	}
	for _, tt := range tests {
		if got := (XLSXOptions{MaxRows: tt.max}).Fits(tt.rows); got != tt.want {
			t.Errorf("MaxRows %d, %d rows: Fits = %v, want %v", tt.max, tt.rows, got, tt.want)
		}
	}
}
