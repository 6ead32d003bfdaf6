package nginxconf

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vehicle-data/vehicle-data/internal/uploader"
)

func TestWrite(t *testing.T) {
	var b strings.Builder
	err := Write(&b, Config{Dir: "/tmp/x", Listen: "127.0.0.1:9000", Upstreams: []string{"127.0.0.1:9001", "127.0.0.1:9002"}})
	if err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"listen 127.0.0.1:9000;",
		"server 127.0.0.1:9001 max_fails=1 fail_timeout=1s;",
		"server 127.0.0.1:9002 max_fails=1 fail_timeout=1s;",
		"pid /tmp/x/nginx.pid;",
		"proxy_buffering off;",
		// The default chunk must fit nginx's body buffer (see the template).
		fmt.Sprintf("client_body_buffer_size %dm;", uploader.DefaultChunkSize>>20),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("configuration lacks %q", want)
		}
	}
	if strings.Contains(got, "{{") {
		t.Error("configuration has an unexpanded action")
	}
}

func TestWriteRefusesAnIncompleteConfig(t *testing.T) {
	for _, c := range []Config{{}, {Dir: "/d", Listen: "a:1"}, {Listen: "a:1", Upstreams: []string{"b:2"}}} {
		if err := Write(&strings.Builder{}, c); err == nil {
			t.Errorf("Write(%+v) = nil, want an error", c)
		}
	}
}
