package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// findPsql returns path when set, else psql from PATH or from the PostgreSQL
// installation (Debian does not put it on PATH without postgresql-client-common).
func findPsql(path string) (string, error) {
	if path != "" {
		return exec.LookPath(path)
	}
	if p, err := exec.LookPath("psql"); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql")
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", errors.New("psql not found: install the PostgreSQL client or pass --psql")
}

// psql runs psql's \copy, the baseline the service is measured against.
type psql struct{ path string }

// copyColumns are the columns of a file in the original format, in its order.
const copyColumns = `"timestamp", speed, odometer, soc, elevation, shift_state`

var copyStatus = regexp.MustCompile(`(?m)^COPY (\d+)$`)

// copyIn times \copy of the CSV file at path into table and returns the rows copied.
func (p psql) copyIn(ctx context.Context, dbURL, table, path string) (time.Duration, int64, error) {
	cmd := fmt.Sprintf(`\copy %s (%s) FROM %s WITH (FORMAT csv, HEADER true, NULL 'NULL')`, table, copyColumns, quoteLiteral(path))
	var out bytes.Buffer
	d, err := p.run(ctx, dbURL, cmd, &out, false)
	if err != nil {
		return 0, 0, err
	}
	m := copyStatus.FindSubmatch(out.Bytes())
	if m == nil {
		return 0, 0, fmt.Errorf("psql \\copy: no COPY status in its output %q", out.String())
	}
	n, err := strconv.ParseInt(string(m[1]), 10, 64)
	return d, n, err
}

// copyOut times \copy of one vehicle's rows in timestamp order as CSV with a header to
// psql's standard output, which is read by this process and counted, as an HTTP export's
// body is; it returns the bytes.
func (p psql) copyOut(ctx context.Context, dbURL, vehicleID string) (time.Duration, int64, error) {
	cmd := fmt.Sprintf(`\copy (SELECT id, %[1]s AS vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM samples `+
		`WHERE vehicle_key = (SELECT vehicle_key FROM vehicles WHERE vehicle_id = %[1]s) ORDER BY "timestamp", id) TO STDOUT WITH CSV HEADER`,
		quoteLiteral(vehicleID))
	var cw countingWriter
	d, err := p.run(ctx, dbURL, cmd, &cw, true)
	return d, cw.n, err
}

// run times one psql process running command. Quiet mode keeps the status line out of
// a copy to standard output.
func (p psql) run(ctx context.Context, dbURL, command string, stdout io.Writer, quiet bool) (time.Duration, error) {
	args := []string{"-X", "-v", "ON_ERROR_STOP=1", "-d", dbURL, "-c", command}
	if quiet {
		args = append([]string{"-q"}, args...)
	}
	cmd := exec.CommandContext(ctx, p.path, args...)
	// Timestamps without an offset are UTC, as the service reads them.
	cmd.Env = append(os.Environ(), "PGTZ=UTC", "PGOPTIONS=")
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("psql %s: %w: %s", firstWords(command), err, strings.TrimSpace(stderr.String()))
	}
	return d, nil
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// countingWriter discards what it is given and counts the bytes.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
