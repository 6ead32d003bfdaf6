package records

import "strings"

// orderString renders an ordering in its query-parameter form, for comparing orderings.
func orderString(o Order) string {
	parts := make([]string, len(o))
	for i, f := range o {
		if f.Desc {
			parts[i] = "-" + f.Field
		} else {
			parts[i] = f.Field
		}
	}
	return strings.Join(parts, ",")
}
