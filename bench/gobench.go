package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// goBenchSet is one `go test -bench` invocation.
type goBenchSet struct {
	Packages []string
	CPU      string // -cpu; empty: GOMAXPROCS
}

// goBenchSets are the hot paths: issuing a claims token on one core (the
// Claims Provider's target is per core), verifying an RPT, storing a 1 KiB
// message (alone and concurrently: group commit), the accepted POST through
// the handlers, parsing the UMA challenge.
var goBenchSets = []goBenchSet{
	{Packages: []string{"./claims-provider/internal/issuer", "./claims-provider/internal/server"}, CPU: "1"},
	{Packages: []string{"./resource-server/internal/rpt", "./resource-server/internal/store", "./resource-server/internal/server", "./internal/uma", "./internal/jwtverify"}},
}

// GoBench is one benchmark result line.
type GoBench struct {
	Package string             `json:"package"`
	Name    string             `json:"name"` // without the -GOMAXPROCS suffix
	Procs   int                `json:"gomaxprocs"`
	Iters   int64              `json:"iterations"`
	Metrics map[string]float64 `json:"metrics"` // unit -> value: ns/op, B/op, allocs/op, msgs/s, tokens/s, ...
}

// runGoBenchmarks runs every set from the repository root, copying the
// output to out, and returns the parsed results.
func runGoBenchmarks(ctx context.Context, root, benchtime string, out io.Writer) ([]GoBench, error) {
	var all []GoBench
	for _, set := range goBenchSets {
		args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", benchtime}
		if set.CPU != "" {
			args = append(args, "-cpu", set.CPU)
		}
		args = append(args, set.Packages...)
		fmt.Fprintf(out, "$ go %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = os.Environ()
		var buf bytes.Buffer
		cmd.Stdout = io.MultiWriter(out, &buf)
		cmd.Stderr = io.MultiWriter(out, &buf)
		err := cmd.Run()
		procs := runtime.GOMAXPROCS(0)
		if set.CPU != "" {
			procs, _ = strconv.Atoi(set.CPU)
		}
		res := parseGoBench(buf.Bytes(), procs)
		all = append(all, res...)
		if err != nil {
			return all, fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
		}
	}
	return all, nil
}

// parseGoBench reads `go test -bench` output run with GOMAXPROCS procs:
// "pkg:" lines name the package of the Benchmark lines after them.
func parseGoBench(data []byte, procs int) []GoBench {
	var out []GoBench
	pkg := ""
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		line := s.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		name := f[0]
		if procs > 1 {
			name = strings.TrimSuffix(name, "-"+strconv.Itoa(procs))
		}
		b := GoBench{Package: pkg, Name: name, Procs: procs, Iters: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			b.Metrics[f[i+1]] = v
		}
		out = append(out, b)
	}
	return out
}

// findBench returns the result of that name.
func findBench(all []GoBench, name string) (GoBench, bool) {
	for _, b := range all {
		if b.Name == name {
			return b, true
		}
	}
	return GoBench{}, false
}
