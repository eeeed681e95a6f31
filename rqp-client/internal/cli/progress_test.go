package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/rqp-client/internal/umafake"
	"github.com/umawide/umawide/rqp-client/rqp"
)

func TestRenderTransfer(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    rqp.Transfer
		want string
	}{
		{"hashing half way", rqp.Transfer{Phase: rqp.PhaseHash, Attempt: 1, Done: 512 << 20, Total: 1 << 30, Elapsed: 2 * time.Second},
			"      hashing             512.0 MiB / 1.0 GiB   50%  256.0 MiB/s  2s left"},
		{"upload of step 9 done", rqp.Transfer{Phase: rqp.PhaseUpload, Step: 9, Attempt: 1, Done: 3 << 30, Total: 3 << 30, Elapsed: 90 * time.Second, Final: true},
			"      uploading (step 9)  3.0 GiB / 3.0 GiB  100%  34.1 MiB/s  done in 1m30s"},
		{"second attempt, nothing yet", rqp.Transfer{Phase: rqp.PhaseUpload, Step: 1, Attempt: 2, Total: 10 << 20},
			"      (attempt 2) uploading (step 1) 0 B / 10.0 MiB    0%"},
		{"slow: hours left", rqp.Transfer{Phase: rqp.PhaseUpload, Step: 9, Attempt: 1, Done: 1 << 20, Total: 8 << 30, Elapsed: time.Second},
			"      uploading (step 9)  1.0 MiB / 8.0 GiB    0%  1.0 MiB/s  2h16m left"},
		{"empty", rqp.Transfer{Phase: rqp.PhaseHash, Attempt: 1, Final: true},
			"      hashing             0 B / 0 B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := renderTransfer(tc.t); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestFmtBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 1 << 40: "1.0 TiB", 3 << 50: "3072.0 TiB"} {
		if got := fmtBytes(n); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// clock is a time source the test moves by hand: no timed assertions.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestProgressLineRedrawsInPlaceAtMostEvery200ms(t *testing.T) {
	var out bytes.Buffer
	c := &clock{t: time.Unix(1e9, 0)}
	p := &progressLine{w: &out, now: c.now}
	tr := rqp.Transfer{Phase: rqp.PhaseHash, Attempt: 1, Total: 4 << 20}
	step := func(done int64, advance time.Duration, final bool) {
		c.t = c.t.Add(advance)
		tr.Done, tr.Elapsed, tr.Final = done, tr.Elapsed+advance, final
		p.update(tr)
	}
	step(1<<20, 10*time.Millisecond, false) // first report: drawn
	step(2<<20, 10*time.Millisecond, false) // too soon: skipped
	step(3<<20, 300*time.Millisecond, false)
	step(4<<20, 10*time.Millisecond, true) // final: always drawn, line ended
	got := out.String()
	if n := strings.Count(got, "\r"); n != 3 {
		t.Fatalf("%d redraws, want 3 (first, after 200ms, final): %q", n, got)
	}
	if strings.Contains(got, "2.0 MiB /") {
		t.Errorf("the report 10ms after the first was drawn: %q", got)
	}
	if !strings.HasSuffix(got, "done in 0s\x1b[K\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("the final report does not end the line: %q", got)
	}
	if !strings.Contains(got, "\x1b[K") {
		t.Errorf("no erase to the end of the line: %q", got)
	}
	// A new pass after a final report is drawn at once; clear() erases it.
	out.Reset()
	tr = rqp.Transfer{Phase: rqp.PhaseUpload, Step: 1, Attempt: 1, Total: 4 << 20}
	step(1<<20, time.Millisecond, false)
	p.clear()
	if got := out.String(); !strings.HasPrefix(got, "\r      uploading (step 1)") || !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("new pass then clear: %q", got)
	}
	out.Reset()
	p.clear()
	if out.Len() != 0 {
		t.Errorf("clear without an open line wrote %q", out.String())
	}
}

func TestWantProgress(t *testing.T) {
	var buf bytes.Buffer
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	for _, tc := range []struct {
		mode  string
		quiet bool
		w     any
		size  int64
		want  bool
	}{
		{"auto", false, &buf, 1 << 30, false},    // not a terminal
		{"auto", false, devNull, 1 << 30, false}, // a character device, not a terminal
		{"always", false, &buf, 10, true},        // forced
		{"always", true, &buf, 10, true},         // forced, even with -q
		{"never", false, &buf, 1 << 30, false},
	} {
		w := tc.w.(interface{ Write([]byte) (int, error) })
		got, err := wantProgress(tc.mode, tc.quiet, w, tc.size)
		if err != nil || got != tc.want {
			t.Errorf("wantProgress(%q, quiet %v, %T, %d) = %v, %v; want %v", tc.mode, tc.quiet, tc.w, tc.size, got, err, tc.want)
		}
	}
	if _, err := wantProgress("sometimes", false, &buf, 1); err == nil {
		t.Error("an unknown mode was accepted")
	}
}

func TestPushShowsHashingAndUploadProgress(t *testing.T) {
	s := umafake.New(t)
	const size = 3<<20 + 17
	file := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(file, bytes.Repeat([]byte{7}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, nil, "", pushArgs(s, file, "--email", umafake.AliceEmail, "--progress", "always")...)
	if r.code != ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if msgs := s.StoredMessages(); len(msgs) != 1 || len(msgs[0].Body) != size {
		t.Fatalf("stored %d messages", len(msgs))
	}
	hash := strings.Index(r.stderr, "hashing             3.0 MiB / 3.0 MiB  100%")
	step1 := strings.Index(r.stderr, " 1/10 ")
	upload := strings.Index(r.stderr, "uploading (step 9)  3.0 MiB / 3.0 MiB  100%")
	step9 := strings.Index(r.stderr, " 9/10 ")
	if hash < 0 || upload < 0 || !(hash < step1 && step1 < upload && upload < step9) {
		t.Fatalf("want the hashing line before step 1 and the upload's before step 9:\n%q", r.stderr)
	}
	// The step lines stay whole: a progress line is ended or erased first.
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "/10 ") && strings.Contains(l, "MiB") {
			t.Errorf("a step line shares its line with progress: %q", l)
		}
	}

	// Without the flag, and standard error not a terminal: no progress.
	r = runCLI(t, nil, "", pushArgs(s, file, "--email", umafake.AliceEmail)...)
	if r.code != ExitOK || strings.Contains(r.stderr, "hashing") || strings.Contains(r.stderr, "\r") {
		t.Fatalf("exit %d, progress shown off a terminal:\n%q", r.code, r.stderr)
	}
}
