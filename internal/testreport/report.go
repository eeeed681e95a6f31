// Command testreport reads `go test -json` on standard input and prints
// what plain `go test` prints (an ok line per package; for a failed package
// the output of its failed tests), then every skipped test with its reason
// and a closing count:
//
//	go test -json ./... | go run ./internal/testreport
//
// It exits 1 when a test or a package (build, TestMain, timeout) failed, or
// when no test result came in at all. `make test` uses it, so that a test
// that could not run says why at the end of the run instead of passing
// unseen.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	sum, err := report(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
	if !sum.ok() {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string // build-output, build-fail
	FailedBuild string
}

// outLine is a line of a package's output and the test that wrote it ("":
// the package itself: TestMain, panics outside tests, go test's FAIL line).
type outLine struct {
	test, text string
}

type pkgState struct {
	lines  []outLine
	result map[string]string // test -> pass, fail, skip
}

// skipped is a test that did not run, with its reason.
type skipped struct {
	pkg, test, reason string
}

// summary is what a run came to.
type summary struct {
	passed, failed, skipped int
	skips                   []skipped
	failures                []string // "pkg TestName", or "pkg" for a package that failed outside its tests
	results                 int      // package and test results seen
}

func (s summary) ok() bool { return s.failed == 0 && s.results > 0 }

// report copies the progress of a run from in to out as it happens and
// ends with the skipped tests and the counts.
func report(in io.Reader, out io.Writer) (summary, error) {
	var sum summary
	pkgs := map[string]*pkgState{}
	state := func(pkg string) *pkgState {
		p := pkgs[pkg]
		if p == nil {
			p = &pkgState{result: map[string]string{}}
			pkgs[pkg] = p
		}
		return p
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024) // a test may log long lines
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			// Not an event (a tool's own message): pass it on.
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		switch ev.Action {
		case "build-output":
			fmt.Fprint(out, ev.Output) // compiler errors, as go test prints them
		case "output":
			p := state(ev.Package)
			p.lines = append(p.lines, outLine{ev.Test, ev.Output})
		case "pass", "fail", "skip":
			sum.results++
			p := state(ev.Package)
			if ev.Test != "" {
				p.result[ev.Test] = ev.Action
				continue
			}
			finishPackage(out, ev, p, &sum)
			delete(pkgs, ev.Package)
		}
	}
	if err := sc.Err(); err != nil {
		return sum, fmt.Errorf("reading go test -json: %w", err)
	}
	// Packages without a result: the run was cut off.
	var cut []string
	for name := range pkgs {
		cut = append(cut, name)
	}
	sort.Strings(cut)
	for _, name := range cut {
		p := pkgs[name]
		if len(p.lines) == 0 && len(p.result) == 0 {
			continue
		}
		fmt.Fprintf(out, "FAIL\t%s [no result: the run was cut off]\n", name)
		printFailed(out, p)
		sum.failed++
		sum.failures = append(sum.failures, name+" (no result)")
	}
	printSummary(out, sum)
	return sum, nil
}

// finishPackage prints a package's result as go test does and counts its tests.
func finishPackage(out io.Writer, ev event, p *pkgState, sum *summary) {
	tests := make([]string, 0, len(p.result))
	for name := range p.result {
		tests = append(tests, name)
	}
	sort.Strings(tests)
	failedTests := 0
	for _, name := range tests {
		switch p.result[name] {
		case "pass":
			sum.passed++
		case "fail":
			sum.failed++
			failedTests++
			sum.failures = append(sum.failures, ev.Package+" "+name)
		case "skip":
			sum.skipped++
			sum.skips = append(sum.skips, skipped{ev.Package, name, skipReason(p, name)})
		}
	}
	switch ev.Action {
	case "pass", "skip":
		// The ok (or "no test files") line only, as plain go test.
		for _, l := range p.lines {
			if l.test == "" && (strings.HasPrefix(l.text, "ok ") || strings.HasPrefix(l.text, "? ")) {
				fmt.Fprint(out, l.text)
			}
		}
	case "fail":
		printFailed(out, p)
		if failedTests == 0 {
			// Failed outside any test: build, TestMain, a panic or timeout
			// between tests. It counts, or a run could fail with "0 failed".
			sum.failed++
			why := "package"
			if ev.FailedBuild != "" {
				why = "build failed"
			}
			sum.failures = append(sum.failures, ev.Package+" ("+why+")")
		}
	}
}

// printFailed prints the package's own output and that of its failed (or
// unfinished) tests, without test2json's framing lines.
func printFailed(out io.Writer, p *pkgState) {
	for _, l := range p.lines {
		if l.test != "" && p.result[l.test] != "fail" && p.result[l.test] != "" {
			continue
		}
		if framing(l.text) {
			continue
		}
		fmt.Fprint(out, l.text)
	}
}

// framing says whether a line is go test -v's progress rather than output.
func framing(text string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(text, p) {
			return true
		}
	}
	return false
}

// skipReason is what a skipped test logged, without the framing and its
// own "--- SKIP" line, on one line.
func skipReason(p *pkgState, test string) string {
	var parts []string
	for _, l := range p.lines {
		if l.test != test || framing(l.text) {
			continue
		}
		text := strings.TrimSpace(l.text)
		if text == "" || strings.HasPrefix(text, "--- SKIP: ") {
			continue
		}
		parts = append(parts, text)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

func printSummary(out io.Writer, sum summary) {
	fmt.Fprintln(out)
	if len(sum.skips) > 0 {
		fmt.Fprintln(out, "skipped tests:")
		sort.Slice(sum.skips, func(i, j int) bool {
			a, b := sum.skips[i], sum.skips[j]
			return a.pkg < b.pkg || a.pkg == b.pkg && a.test < b.test
		})
		for _, s := range sum.skips {
			fmt.Fprintf(out, "  %s %s\n      %s\n", s.pkg, s.test, s.reason)
		}
	}
	if len(sum.failures) > 0 {
		fmt.Fprintln(out, "failed:")
		sort.Strings(sum.failures)
		for _, f := range sum.failures {
			fmt.Fprintf(out, "  %s\n", f)
		}
	}
	if sum.results == 0 {
		fmt.Fprintln(out, "no test result came in")
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", sum.passed, sum.failed, sum.skipped)
}
