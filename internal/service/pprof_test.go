package service

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
)

func TestCheckProfilingAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"": true, "127.0.0.1:6060": true, "[::1]:6060": true, "localhost:6060": true,
		"0.0.0.0:6060": false, ":6060": false, "10.0.0.1:6060": false, "example.org:6060": false, "127.0.0.1": false,
	} {
		if err := CheckProfilingAddr(addr); (err == nil) != ok {
			t.Errorf("CheckProfilingAddr(%q) = %v, want ok %v", addr, err, ok)
		}
	}
}

func TestServeProfiling(t *testing.T) {
	if _, err := ServeProfiling(context.Background(), "0.0.0.0:0", slog.Default()); err == nil {
		t.Fatal("a non-loopback address was served")
	}
	if addr, err := ServeProfiling(context.Background(), "", slog.Default()); addr != "" || err != nil {
		t.Fatalf("off: %q %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := ServeProfiling(ctx, "127.0.0.1:0", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/allocs?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("allocs profile: %s, %d bytes", resp.Status, len(body))
	}
}
