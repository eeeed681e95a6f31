package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// testdata/go-test.jsonl is real `go test -json ./...` output of a small
// module: passing, skipped and failing tests and subtests, a package without
// tests, a build failure, a panicking test and a TestMain that exits 2.
func TestReportOfARealRun(t *testing.T) {
	in, err := os.ReadFile("testdata/go-test.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sum, err := report(bytes.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if sum.ok() {
		t.Error("a run with failures reported ok")
	}
	if sum.passed != 4 || sum.failed != 4 || sum.skipped != 2 {
		t.Errorf("counts %d/%d/%d, want 4 passed (TestPass, TestSub, TestSub/b, TestOK), 4 failed (TestFail, TestPanic, build, TestMain), 2 skipped", sum.passed, sum.failed, sum.skipped)
	}
	if !strings.HasSuffix(got, "\n4 passed, 4 failed, 2 skipped\n") {
		t.Errorf("last line of\n%s", got)
	}
	for _, want := range []string{
		"c/c_test.go:3:39: cannot use", // the compiler's message
		"    a_test.go:5: shown\n    a_test.go:5: boom\n--- FAIL: TestFail",
		"panic: kaput",
		"main says bye\nFAIL\ttrx/e",
		"?   \ttrx/b\t[no test files]\n",
		"skipped tests:\n  trx TestSkip\n      a_test.go:4: no database: set X\n  trx TestSub/a\n      a_test.go:6: sub skip\n",
		"failed:\n  trx TestFail\n  trx/c (build failed)\n  trx/d TestPanic\n  trx/e (package)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// Passing tests stay quiet, as with plain go test; so does -v's framing.
	for _, unwanted := range []string{"hidden", "=== RUN", "--- PASS", "--- SKIP"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("output has %q:\n%s", unwanted, got)
		}
	}
}

func TestReportAllPassing(t *testing.T) {
	in := `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.01s\n"}
{"Action":"pass","Package":"p"}
`
	var out bytes.Buffer
	sum, err := report(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.ok() {
		t.Error("a passing run reported not ok")
	}
	if want := "ok  \tp\t0.01s\n\n1 passed, 0 failed, 0 skipped\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

// A run that is cut off (go test killed, or Keycloak never started) must not
// pass: a package without a result fails, and no result at all is no success.
func TestReportCutOffOrEmpty(t *testing.T) {
	in := `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestSlow"}
{"Action":"output","Package":"p","Test":"TestSlow","Output":"    slow_test.go:9: waiting\n"}
`
	var out bytes.Buffer
	sum, err := report(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.ok() || sum.failed != 1 || !strings.Contains(out.String(), "slow_test.go:9: waiting") {
		t.Errorf("cut-off run: %+v\n%s", sum, out.String())
	}
	out.Reset()
	sum, err = report(strings.NewReader("devstack: Keycloak did not start\n"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.ok() || !strings.Contains(out.String(), "devstack: Keycloak did not start\n") || !strings.Contains(out.String(), "no test result came in") {
		t.Errorf("empty run: %+v\n%s", sum, out.String())
	}
}
