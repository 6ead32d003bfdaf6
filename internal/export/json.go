package export

// AppendJSONFloat appends f as encoding/json writes a float64 (see appendFloat), for other
// hand-written JSON answers (the series) that must print numbers as the list does.
func AppendJSONFloat(b []byte, f float64) []byte { return appendFloat(b, f) }
