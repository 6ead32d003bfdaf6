package server

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/records"
)

// checkParams answers 400 to an API request whose query string cannot be read (a bad
// percent escape) or whose query or path parameters, names or values, are not valid UTF-8
// or hold NUL, naming the parameter. It runs before any handler, for every route, so no
// such text reaches PostgreSQL (which refuses it: a 500 otherwise) and no route can forget.
func checkParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if !strings.HasPrefix(req.URL.Path, "/api/") {
			return next(c)
		}
		if raw := req.URL.RawQuery; raw != "" {
			vals, err := url.ParseQuery(raw)
			if err != nil {
				return apperr.Invalid(fmt.Sprintf("malformed query string: %v", err))
			}
			var errs []apperr.FieldError
			names := slices.Sorted(func(yield func(string) bool) {
				for k := range vals {
					if !yield(k) {
						return
					}
				}
			})
			for _, name := range names {
				if msg := badText(name); msg != "" {
					errs = append(errs, apperr.FieldError{Field: fmt.Sprintf("%q", name), Message: "the parameter's name " + msg})
					continue
				}
				for _, v := range vals[name] {
					if msg := badText(v); msg != "" {
						errs = append(errs, apperr.FieldError{Field: name, Message: msg})
						break
					}
				}
			}
			if len(errs) > 0 {
				return invalidParams(errs)
			}
		}
		for i, name := range c.ParamNames() {
			v, err := url.PathUnescape(c.ParamValues()[i])
			if err != nil {
				return apperr.InvalidField(name, "malformed percent escape in the path: %v", err)
			}
			if msg := badText(v); msg != "" {
				return apperr.InvalidField(name, "%s", msg)
			}
		}
		return next(c)
	}
}

// badText says what is wrong with s as text, or "" (records.CheckChars, the one rule).
func badText(s string) string {
	if err := records.CheckChars(s); err != nil {
		return err.Error()
	}
	return ""
}
