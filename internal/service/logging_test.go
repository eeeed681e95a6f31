package service

import (
	"bytes"
	"strings"
	"testing"
)

func TestLogging(t *testing.T) {
	var out bytes.Buffer
	l, err := Logging{Level: "warn", Format: "json"}.New(&out)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown")
	if strings.Contains(out.String(), "hidden") || !strings.HasPrefix(out.String(), "{") {
		t.Fatalf("log %q", out.String())
	}
	for _, bad := range []Logging{{Level: "loud", Format: "text"}, {Level: "info", Format: "xml"}} {
		if _, err := bad.New(&out); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
