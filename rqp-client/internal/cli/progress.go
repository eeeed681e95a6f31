package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/umawide/umawide/rqp-client/rqp"
)

// progressMinBytes: content below this is over before a progress line could
// tell a person anything, so "auto" shows none.
const progressMinBytes = 8 << 20

// progressEvery is the least time between two redraws of the progress line.
const progressEvery = 200 * time.Millisecond

// Progress modes (--progress).
const (
	progressAuto   = "auto"
	progressAlways = "always"
	progressNever  = "never"
)

// wantProgress decides whether push shows the progress of hashing and
// uploads: "auto" only for large content on a terminal, and never with -q.
func wantProgress(mode string, quiet bool, stderr io.Writer, size int64) (bool, error) {
	switch mode {
	case progressAlways:
		return true, nil
	case progressNever:
		return false, nil
	case progressAuto, "":
		return !quiet && size >= progressMinBytes && isTerminal(stderr), nil
	}
	return false, fmt.Errorf("--progress %q: want auto, always or never", mode)
}

// isTerminal tells whether w is a terminal (a tty answers the termios
// ioctl; a pipe, file or /dev/null does not).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressLine draws one line on a terminal that it redraws in place
// (carriage return, erase to the end of the line) and ends with a newline
// when a pass is over. The caller serialises calls (reporter.mu): uploads
// report from the HTTP transport's goroutine.
type progressLine struct {
	w     io.Writer
	now   func() time.Time
	drawn time.Time // when the line was last drawn
	open  bool      // a line is drawn and not ended
}

// update shows t: at most every progressEvery, but always a pass's first
// and final report.
func (p *progressLine) update(t rqp.Transfer) {
	now := p.now()
	if p.open && !t.Final && now.Sub(p.drawn) < progressEvery {
		return
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", renderTransfer(t))
	p.drawn, p.open = now, true
	if t.Final {
		fmt.Fprint(p.w, "\n")
		p.open = false
	}
}

// clear erases a line left open (a pass cut short: step 1's body held back
// by Expect: 100-continue, a failure) before other output.
func (p *progressLine) clear() {
	if p.open {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.open = false
	}
}

// renderTransfer is the text of one progress line, e.g.
// "      uploading (step 9)  512.0 MiB / 1.0 GiB  50%  85.3 MiB/s  6s left".
func renderTransfer(t rqp.Transfer) string {
	what := "hashing"
	if t.Phase == rqp.PhaseUpload {
		what = fmt.Sprintf("uploading (step %d)", t.Step)
	}
	if t.Attempt > 1 {
		what = fmt.Sprintf("(attempt %d) %s", t.Attempt, what)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "      %-19s %s / %s", what, fmtBytes(t.Done), fmtBytes(t.Total))
	if t.Total > 0 {
		fmt.Fprintf(&b, "  %3d%%", t.Done*100/t.Total)
	}
	secs := t.Elapsed.Seconds()
	if secs <= 0 || t.Done <= 0 {
		return b.String()
	}
	rate := float64(t.Done) / secs
	fmt.Fprintf(&b, "  %s/s", fmtBytes(int64(rate)))
	if t.Final {
		fmt.Fprintf(&b, "  done in %s", fmtSeconds(secs))
	} else if left := t.Total - t.Done; left > 0 {
		fmt.Fprintf(&b, "  %s left", fmtSeconds(float64(left)/rate))
	}
	return b.String()
}

// fmtBytes: binary units, one decimal from KiB on.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n) / unit
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if v < unit || u == "TiB" {
			return fmt.Sprintf("%.1f %s", v, u)
		}
		v /= unit
	}
	return ""
}

// fmtSeconds: whole seconds, minutes and hours past a minute ("1m05s").
func fmtSeconds(s float64) string {
	d := time.Duration(s+0.5) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
