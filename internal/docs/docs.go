// Package docs serves Swagger UI for /openapi.yaml with every asset embedded in the binary
// (swaggest/swgui's v5emb), so the page works on machines without internet access.
package docs

import (
	"net/http"

	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5emb"
)

// Handler serves Swagger UI under /docs.
func Handler() http.Handler {
	return v5emb.NewHandlerWithConfig(swgui.Config{
		Title:       "vehicle-data API",
		SwaggerJSON: "/openapi.yaml",
		BasePath:    "/docs/",
		ShowTopBar:  false,
	})
}
