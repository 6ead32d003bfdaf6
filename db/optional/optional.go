// Package optional embeds the schema additions the migrations leave to the operator, so that
// tests and benchmarks apply the very statements the README gives.
package optional

import _ "embed"

// ShiftStateIndex creates samples_shift_state_idx (see the file's comment).
//
//go:embed shift_state_index.sql
var ShiftStateIndex string
