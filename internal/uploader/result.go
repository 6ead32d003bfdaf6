package uploader

import (
	"fmt"
	"strings"

	"github.com/vehicle-data/vehicle-data/gen/client"
)

// FormatResult summarises a finalize in a line, followed by the first rows that
// were skipped as invalid, if any.
func FormatResult(res *client.FinalizeResult) string {
	if res == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (vehicle %s): %d rows received, %d inserted, %d duplicate, %d invalid",
		res.FileName, res.VehicleId, res.RowsReceived, res.RowsInserted, res.RowsDuplicate, res.RowsInvalid)
	rows := res.Errors
	for i, r := range rows {
		if i == maxShownRows {
			fmt.Fprintf(&b, "\n  ... and %d more invalid rows", max(res.RowsInvalid, int64(len(rows)))-int64(i))
			break
		}
		b.WriteString("\n  skipped ")
		b.WriteString(formatRowError(r))
	}
	return b.String()
}
