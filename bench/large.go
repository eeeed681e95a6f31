package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/umawide/umawide/internal/stack"
)

// LargeRun is the large-content run: one push of generated content through
// the whole flow (the rqp-client command: hashing, steps 1-10, the Resource
// Server storing it) against copying the same bytes to another file on the
// same disk in the same run (read, write, fsync), before and after the push.
type LargeRun struct {
	Bytes int64  `json:"bytes"`
	Error string `json:"error,omitempty"`
	// CopySeconds: the copies before and after the push; CopyMiBps their
	// mean rate.
	CopySeconds []float64 `json:"copy_s"`
	CopyMiBps   float64   `json:"copy_mib_per_s"`
	// PushSeconds: the rqp-client process from start to exit.
	PushSeconds float64 `json:"push_s"`
	PushMiBps   float64 `json:"push_mib_per_s"`
	RatioToCopy float64 `json:"ratio_to_copy"`
	// StepsMs: the client's steps (its --json), by step number; HashMs is
	// what the process spent besides them (reading the file to hash it,
	// starting up).
	StepsMs map[string]float64 `json:"steps_ms,omitempty"`
	HashMs  float64            `json:"hash_and_startup_ms"`
	// Peak resident memory (VmHWM) and CPU of the client process and of a
	// Resource Server started for this run alone.
	ClientPeakMiB float64 `json:"client_peak_rss_mib"`
	RSPeakMiB     float64 `json:"resource_server_peak_rss_mib"`
	ClientCPUs    float64 `json:"client_cpu_s"`
	RSCPUs        float64 `json:"resource_server_cpu_s"`
	SHA256        string  `json:"sha256,omitempty"`
	// LoadAvg is the machine's load average before and after the run.
	LoadAvg [2][3]float64 `json:"loadavg_before_after"`
}

func mibps(n int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return round3(float64(n) / (1 << 20) / secs)
}

// runLarge runs the large-content run on deployment d; a failure is
// recorded in r.Large.Error (and noted), never fatal: the other figures
// of the run stand.
func runLarge(ctx context.Context, e *env, d *deployment, o options, r *Result) {
	l := &LargeRun{Bytes: o.largeSize}
	r.Large = l
	l.LoadAvg[0] = loadAvg()
	err := large(ctx, e, d, o, l)
	l.LoadAvg[1] = loadAvg()
	if len(l.CopySeconds) > 0 {
		mean := 0.0
		for _, s := range l.CopySeconds {
			mean += s
		}
		l.CopyMiBps = mibps(o.largeSize, mean/float64(len(l.CopySeconds)))
	}
	if err == nil {
		l.PushMiBps = mibps(o.largeSize, l.PushSeconds)
		l.RatioToCopy = ratio(l.PushMiBps, l.CopyMiBps)
	}
	if err != nil {
		l.Error = err.Error()
		r.Notes = append(r.Notes, "large-content run: "+err.Error())
		e.log.Warn("large-content run failed", "err", err)
	}
}

func large(ctx context.Context, e *env, d *deployment, o options, l *LargeRun) error {
	dir := filepath.Join(e.dir, "large")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "large.bin")
	e.log.Info("large-content run: generating the content", "bytes", o.largeSize, "file", src)
	if err := generate(src, o.largeSize); err != nil {
		return fmt.Errorf("generating %d bytes: %w", o.largeSize, err)
	}
	copyOnce := func() error {
		dst := filepath.Join(dir, "copy.bin")
		t0 := time.Now()
		if err := copyFile(src, dst); err != nil {
			return fmt.Errorf("copy baseline: %w", err)
		}
		l.CopySeconds = append(l.CopySeconds, round3(time.Since(t0).Seconds()))
		return os.Remove(dst)
	}
	if err := copyOnce(); err != nil {
		return err
	}

	// A Resource Server of its own: its peak memory is this push's.
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	name := compResourceServer + "_large"
	extra := append(strings.Fields(o.rsFlags), "-max-body", strconv.FormatInt(o.largeSize, 10))
	spec := stack.ResourceServer{
		Binary: e.bin["resource-server"], Listen: addr, KeycloakURL: d.kc.BaseURL, Realm: d.ourRealm,
		DB: filepath.Join(dir, "rs", name+".db"), LogPath: stack.LogPath(e.dir, name), Extra: extra,
	}.Spec()
	spec.Name = name
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	rs, err := stack.Start(sctx, spec)
	cancel()
	if err != nil {
		return fmt.Errorf("starting a Resource Server with -max-body %d: %w", o.largeSize, err)
	}
	defer func() {
		if err := rs.Stop(context.Background()); err != nil {
			e.log.Warn("stopping service", "name", name, "err", err)
		}
	}()
	to := "http://" + addr + "/incoming/bob"
	rsCPU0, _ := procTimes(rs.PID)

	push := func(file string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, e.bin["rqp-client"], "push", "--to", to, "--file", file, "--email", senderEmail,
			"--authn-issuer", d.kc.IssuerURL("foo"), "--authn-client-secret", rqpSecret,
			"--as-issuer", d.kc.IssuerURL(d.ourRealm), "--as-client-secret", rqpSecret,
			"--claims-provider", d.cpURL, "--json", "--progress", "never", "--upload-timeout", "60m")
		cmd.Env = cleanEnv(os.Environ(), "RQP_CLIENT_")
		return cmd
	}
	// A small push first, as a warm stack has done: the Resource Server's
	// first request for an Incoming registers it at Keycloak, which can take
	// longer than the client waits for "100 Continue" (2 s) on this machine;
	// the client then starts sending the body to a 401 and the connection
	// is reset under it.
	small := filepath.Join(dir, "small.bin")
	if err := generate(small, 1024); err != nil {
		return err
	}
	if b, err := push(small).CombinedOutput(); err != nil {
		return fmt.Errorf("the warm-up push of 1 KiB failed (%v): %.300s", err, b)
	}
	rsCPU0, _ = procTimes(rs.PID)

	e.log.Info("large-content run: pushing", "bytes", o.largeSize, "to", to)
	cmd := push(src)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	runErr := cmd.Run()
	l.PushSeconds = round3(time.Since(t0).Seconds())
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		l.ClientPeakMiB = round3(float64(ru.Maxrss) / 1024)
		l.ClientCPUs = round3(time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds())
	}
	if hwm, err := vmHWM(rs.PID); err == nil {
		l.RSPeakMiB = round3(float64(hwm) / (1 << 20))
	}
	if t, err := procTimes(rs.PID); err == nil {
		l.RSCPUs = round3((t - rsCPU0).Seconds())
	}
	var res struct {
		OK      bool `json:"ok"`
		Content struct {
			SHA256 string `json:"sha256"`
		} `json:"content"`
		Message struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"message"`
		Steps []struct {
			Step       int     `json:"step"`
			DurationMS float64 `json:"duration_ms"`
		} `json:"steps"`
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	jerr := json.Unmarshal(stdout.Bytes(), &res)
	if runErr != nil || jerr != nil || !res.OK {
		msg := strings.TrimSpace(stderr.String())
		if res.Error != nil {
			msg = res.Error.Message
		}
		return fmt.Errorf("the push of %d bytes failed (%v): %.300s", o.largeSize, runErr, msg)
	}
	if res.Message.SHA256 != res.Content.SHA256 || res.Message.Size != o.largeSize {
		return fmt.Errorf("the receipt (%d bytes, sha256 %s) does not match the content (%d, %s)", res.Message.Size, res.Message.SHA256, o.largeSize, res.Content.SHA256)
	}
	l.SHA256 = res.Content.SHA256
	l.StepsMs = map[string]float64{}
	stepsMs := 0.0
	for _, s := range res.Steps {
		l.StepsMs[strconv.Itoa(s.Step)] += s.DurationMS
		stepsMs += s.DurationMS
	}
	l.HashMs = round3(max(0, l.PushSeconds*1000-stepsMs))

	return copyOnce()
}

// cleanEnv drops the variables with that prefix (a developer's RQP_CLIENT_*
// settings must not change the run).
func cleanEnv(env []string, prefix string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

// generate writes n pseudo-random bytes (incompressible, never the same
// twice) to file and syncs it.
func generate(file string, n int64) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	src := mrand.NewChaCha8(seed)
	if _, err := io.CopyBuffer(f, io.LimitReader(src, n), make([]byte, 1<<20)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyFile copies src to a new dst and syncs it: what storing the bytes on
// this disk costs at the least.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	// Plain reads and writes (no copy_file_range, which may share or skip
	// the data on some file systems): the bytes go through memory as a
	// server's would.
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, make([]byte, 1<<20)); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// printLarge writes the large-content run's lines.
func printLarge(w io.Writer, l *LargeRun) {
	if l == nil {
		return
	}
	fmt.Fprintf(w, "\nlarge content: %d bytes (%.0f MiB) generated, one push through the whole flow\n", l.Bytes, float64(l.Bytes)/(1<<20))
	if l.Error != "" {
		fmt.Fprintf(w, "  FAILED: %s\n", l.Error)
	}
	fmt.Fprintf(w, "  copy on the same disk (read, write, fsync): %v s, %.1f MiB/s\n", l.CopySeconds, l.CopyMiBps)
	if l.Error == "" {
		fmt.Fprintf(w, "  push: %.2f s, %.1f MiB/s = %.3f of the copy; steps 1-10 %v ms, hashing and start %.0f ms\n",
			l.PushSeconds, l.PushMiBps, l.RatioToCopy, l.StepsMs, l.HashMs)
	}
	fmt.Fprintf(w, "  peak RSS: client %.1f MiB, Resource Server %.1f MiB; CPU: client %.2f s, Resource Server %.2f s\n",
		l.ClientPeakMiB, l.RSPeakMiB, l.ClientCPUs, l.RSCPUs)
	fmt.Fprintf(w, "  load average before %.2f, after %.2f (1 min)\n", l.LoadAvg[0][0], l.LoadAvg[1][0])
}
