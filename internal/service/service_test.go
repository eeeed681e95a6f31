package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/umawide/umawide/internal/uma"
)

var testTimeouts = Timeouts{ReadHeader: time.Second, Read: time.Minute, Write: time.Minute, Idle: time.Minute, Shutdown: time.Minute, MaxHeaderBytes: 8 << 10}

type fixture struct {
	svc   *Service
	logs  *bytes.Buffer
	ready error
	calls atomic.Int32
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{logs: &bytes.Buffer{}}
	cfg := Config{
		Namespace: "test_svc",
		Logger:    slog.New(slog.NewTextHandler(f.logs, nil)),
		Ready: func(context.Context) error {
			f.calls.Add(1)
			return f.ready
		},
		Timeouts: testTimeouts,
	}
	if mod != nil {
		mod(&cfg)
	}
	var err error
	f.svc, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Engine.GET("/panic", func(*gin.Context) { panic("boom") })
	f.svc.Engine.GET("/abort", func(*gin.Context) { panic(http.ErrAbortHandler) })
	f.svc.Engine.GET("/half", func(c *gin.Context) {
		c.String(http.StatusOK, "partial")
		panic("after the answer started")
	})
	return f
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(method, path string) answer {
	w := httptest.NewRecorder()
	f.svc.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return answer{w.Code, w.Header(), w.Body.String()}
}

func (a answer) wantError(t *testing.T, status int, code string) {
	t.Helper()
	var e uma.Error
	if a.status != status || json.Unmarshal([]byte(a.body), &e) != nil || e.Code != code {
		t.Fatalf("got %d %s, want %d %s", a.status, a.body, status, code)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	ready := func(context.Context) error { return nil }
	for _, c := range []Config{
		{Ready: ready, Timeouts: testTimeouts},
		{Namespace: "x", Timeouts: testTimeouts},
		{Namespace: "x", Ready: ready},
		{Namespace: "x", Ready: ready, Timeouts: Timeouts{ReadHeader: 1, Read: 1, Write: 1, Idle: 1, Shutdown: 1}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	f := newFixture(t, nil)
	if a := f.do(http.MethodGet, PathHealth); a.status != 200 || a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("healthz %+v", a)
	}
	if a := f.do(http.MethodGet, PathReady); a.status != 200 || !strings.Contains(a.body, `"ready"`) {
		t.Fatalf("readyz %+v", a)
	}
	f.ready = errors.New("database at 10.0.0.7 down")
	a := f.do(http.MethodGet, PathReady)
	a.wantError(t, 503, uma.ErrUnavailable)
	if strings.Contains(a.body, "10.0.0.7") || !strings.Contains(f.logs.String(), "10.0.0.7") {
		t.Fatalf("the cause must be logged, not answered: %s / %s", a.body, f.logs)
	}
	f.ready = uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "no signing key loaded")
	if a := f.do(http.MethodGet, PathReady); !strings.Contains(a.body, "no signing key loaded") {
		t.Fatalf("a *uma.Error is the answer: %+v", a)
	}
	f.ready = fmt.Errorf("%w: %w", uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "Keycloak does not answer"), errors.New("dial 10.0.0.8"))
	if a := f.do(http.MethodGet, PathReady); !strings.Contains(a.body, "Keycloak does not answer") || strings.Contains(a.body, "10.0.0.8") ||
		!strings.Contains(f.logs.String(), "10.0.0.8") {
		t.Fatalf("a wrapped *uma.Error is the answer, its cause only logged: %+v", a)
	}
	if n := f.calls.Load(); n != 4 {
		t.Fatalf("%d checks for 4 probes without a cache", n)
	}
}

func TestReadinessCache(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ReadyCacheFor = time.Hour })
	f.ready = errors.New("down")
	for range 5 {
		f.do(http.MethodGet, PathReady).wantError(t, 503, uma.ErrUnavailable)
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d checks within the cache period", n)
	}
}

func TestUnknownRoutesMethodsAndPanics(t *testing.T) {
	var reasons []string
	f := newFixture(t, func(c *Config) {
		c.Fail = func(c *gin.Context, e *uma.Error, reason string) {
			reasons = append(reasons, reason)
			e.Write(c.Writer)
			c.Abort()
		}
	})
	f.do(http.MethodGet, "/nope").wantError(t, 404, uma.ErrNotFound)
	f.do(http.MethodGet, PathHealth+"/").wantError(t, 404, uma.ErrNotFound)
	f.do(http.MethodPost, PathHealth).wantError(t, 405, uma.ErrInvalidRequest)
	f.do(http.MethodGet, "/panic").wantError(t, 500, uma.ErrServerError)
	if a := f.do(http.MethodGet, "/half"); a.status != 200 || a.body != "partial" {
		t.Fatalf("a panic after the answer started: %+v", a)
	}
	if strings.Join(reasons, ",") != "no_route,no_route,method,panic" {
		t.Fatalf("reasons %v", reasons)
	}
	if !strings.Contains(f.logs.String(), "panic in handler") {
		t.Fatal("panic not logged")
	}
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler to go on", v)
			}
		}()
		f.do(http.MethodGet, "/abort")
	}()
}

// A service's middleware runs for every route, the skeleton's and unknown
// ones too, after the skeleton's own.
func TestMiddleware(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Middleware = []gin.HandlerFunc{func(c *gin.Context) {
			if c.Request.URL.Query().Has("refuse") {
				uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "refused").Write(c.Writer)
				c.Abort()
			}
		}}
	})
	for _, path := range []string{PathHealth, PathReady, "/nope"} {
		f.do(http.MethodGet, path+"?refuse").wantError(t, 400, uma.ErrInvalidRequest)
	}
	if a := f.do(http.MethodGet, PathHealth); a.status != 200 {
		t.Fatalf("healthz %+v", a)
	}
	if !strings.Contains(f.do(http.MethodGet, PathMetrics).body, `test_svc_http_requests_total{code="400",method="GET",route="/healthz"} 1`) {
		t.Fatal("a refusal by the service's middleware is not counted")
	}
}

func TestDefaultFailAndHeaders(t *testing.T) {
	f := newFixture(t, nil)
	a := f.do(http.MethodGet, "/nope")
	a.wantError(t, 404, uma.ErrNotFound)
	if a.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers %v", a.header)
	}
}

func TestMetricsAndRequestLog(t *testing.T) {
	f := newFixture(t, nil)
	f.do(http.MethodGet, PathHealth)
	f.do(http.MethodGet, "/nope")
	a := f.do(http.MethodGet, PathMetrics)
	for _, want := range []string{
		`test_svc_http_requests_total{code="200",method="GET",route="/healthz"} 1`,
		`test_svc_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`test_svc_http_request_duration_seconds_count{route="/healthz",status="200"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(f.logs.String(), "msg=request method=GET route=/healthz status=200") {
		t.Fatalf("request log:\n%s", f.logs)
	}
}
