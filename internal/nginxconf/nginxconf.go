// Package nginxconf is the nginx configuration for replicas of the service behind one proxy:
// the one the fault suite tests and the replicas benchmark measures, so that both run the
// configuration the README recommends. Every directive in nginx.conf.tmpl says why it is there.
package nginxconf

import (
	_ "embed"
	"errors"
	"io"
	"text/template"
)

//go:embed nginx.conf.tmpl
var source string

var tmpl = template.Must(template.New("nginx.conf").Parse(source))

// Config is what differs between runs: where nginx keeps its files and which addresses it uses.
type Config struct {
	Dir       string   // nginx's pid, logs and temporary files; absolute
	Listen    string   // host:port nginx listens on
	Upstreams []string // host:port of each replica
}

// Write renders the configuration of c.
func Write(w io.Writer, c Config) error {
	if c.Dir == "" || c.Listen == "" || len(c.Upstreams) == 0 {
		return errors.New("nginxconf: Dir, Listen and at least one upstream are required")
	}
	return tmpl.Execute(w, c)
}
