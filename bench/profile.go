package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Profiles are where each variant's CPU went during -profile-seconds of
// pushes at the run's concurrency, one variant at a time (after the
// measurements, so that profiling costs them nothing): Keycloak sampled by
// Java Flight Recorder, the Resource Server, the Claims Provider (ours) and
// the client by pprof.
type Profiles struct {
	Seconds  int               `json:"seconds"`
	Dir      string            `json:"dir"`
	Variants []*VariantProfile `json:"variants"`
}

// VariantProfile is one variant's profile.
type VariantProfile struct {
	Name     string      `json:"name"`
	Flows    int         `json:"flows"`
	Keycloak *JFRSummary `json:"keycloak,omitempty"`
	// Top is `go tool pprof -top` of the Go services' and the client's
	// CPU profiles (their first lines), by component.
	Top   map[string][]string `json:"pprof_top,omitempty"`
	Files []string            `json:"files"`
}

// JFRSummary condenses Keycloak's execution samples: how many fell into
// each part of the flow (a sample counts for every part on its stack).
type JFRSummary struct {
	Samples        int     `json:"samples"`
	SamplesPerFlow float64 `json:"samples_per_flow"`
	// Parts: samples per flow whose stack holds the part's frame.
	Parts []Share `json:"parts"`
	// Grant: the UMA grant's samples by the frame it was in right below
	// AuthorizationTokenService (what Keycloak does for the grant).
	Grant []Share `json:"uma_grant_by_callee"`
	// Policy: the claims-token policy's samples by the deepest frame of the
	// extension (and the library frame below it).
	Policy []Share `json:"policy_by_frame"`
}

// Share is a count of samples, per flow.
type Share struct {
	Frame   string  `json:"frame"`
	Samples int     `json:"samples"`
	PerFlow float64 `json:"per_flow"`
}

// jfrParts are the parts of Keycloak's work the summary counts, by the
// frame (class and method prefix) that marks them.
var jfrParts = []struct{ name, frame string }{
	{"token endpoint (uma-ticket grant)", "org.keycloak.protocol.oidc.endpoints.TokenEndpoint."},
	{"  UMA grant (AuthorizationTokenService)", "org.keycloak.authorization.authorization.AuthorizationTokenService."},
	{"    claims-token policy (evaluate)", "dev.umawide.keycloak.claims.ClaimsTokenPolicyProvider.evaluate"},
	{"permission ticket (protection API)", "org.keycloak.authorization.protection.permission."},
	{"any frame of the extension", "dev.umawide."},
}

// tokenEndpointFrame marks the token endpoint in folded (short) frames.
const tokenEndpointFrame = "o.k.p.o.e.TokenEndpoint."

// javaPID is the JVM in Keycloak's process group (kc.sh starts it).
func javaPID(pgid int) int {
	for _, p := range groupPIDs(pgid) {
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); err == nil && strings.TrimSpace(string(comm)) == "java" {
			return p
		}
	}
	return 0
}

// startJFR starts a recording (profile settings) named name in the JVM pid;
// the function returned stops it, writing it to file unless file is "".
// With no JVM both do nothing.
func startJFR(ctx context.Context, pid int, name string) func(ctx context.Context, file string) error {
	if pid == 0 {
		return func(context.Context, string) error {
			return fmt.Errorf("no Keycloak JVM to record (process mode only)")
		}
	}
	if b, err := exec.CommandContext(ctx, "jcmd", strconv.Itoa(pid), "JFR.start", "name="+name, "settings=profile").CombinedOutput(); err != nil {
		err = fmt.Errorf("jcmd JFR.start: %v %s", err, strings.TrimSpace(string(b)))
		return func(context.Context, string) error { return err }
	}
	return func(ctx context.Context, file string) error {
		args := []string{strconv.Itoa(pid), "JFR.stop", "name=" + name}
		if file != "" {
			args = append(args, "filename="+file)
		}
		if b, err := exec.CommandContext(ctx, "jcmd", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("jcmd JFR.stop: %v %s", err, strings.TrimSpace(string(b)))
		}
		return nil
	}
}

// profileVariants profiles each variant in turn.
func profileVariants(ctx context.Context, log *slog.Logger, dir string, runs []*variantRun, d *deployment, o options) (*Profiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := &Profiles{Seconds: o.profileSeconds, Dir: dir}
	jvm := javaPID(d.kcC.PID)
	var errs []string
	for _, vr := range runs {
		vp, err := profileOne(ctx, log, dir, vr, jvm, o)
		if vp != nil {
			out.Variants = append(out.Variants, vp)
		}
		if err != nil {
			errs = append(errs, vr.v.Name+": "+err.Error())
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

func profileOne(ctx context.Context, log *slog.Logger, dir string, vr *variantRun, jvm int, o options) (*VariantProfile, error) {
	name := vr.v.Name
	vp := &VariantProfile{Name: name, Top: map[string][]string{}}
	var errs []string
	stopJFR := startJFR(ctx, jvm, "umawide-"+name)
	secs := o.profileSeconds
	var wg sync.WaitGroup
	var mu sync.Mutex
	fetch := func(kind, url, file string) {
		defer wg.Done()
		if err := download(ctx, url, file, time.Duration(secs+30)*time.Second); err != nil {
			mu.Lock()
			errs = append(errs, kind+": "+err.Error())
			mu.Unlock()
			return
		}
		mu.Lock()
		vp.Files = append(vp.Files, file)
		mu.Unlock()
	}
	rsCPU := filepath.Join(dir, "resource_server-"+name+"-cpu.pprof")
	if vr.rsPprof != "" {
		wg.Add(2)
		go fetch("Resource Server CPU profile", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", vr.rsPprof, secs), rsCPU)
		go fetch("Resource Server allocations", fmt.Sprintf("http://%s/debug/pprof/allocs?seconds=%d", vr.rsPprof, secs),
			filepath.Join(dir, "resource_server-"+name+"-allocs.pprof"))
	}
	cpCPU := filepath.Join(dir, "claims_provider-"+name+"-cpu.pprof")
	if vr.cpPprof != "" {
		wg.Add(2)
		go fetch("Claims Provider CPU profile", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", vr.cpPprof, secs), cpCPU)
		go fetch("Claims Provider allocations", fmt.Sprintf("http://%s/debug/pprof/allocs?seconds=%d", vr.cpPprof, secs),
			filepath.Join(dir, "claims_provider-"+name+"-allocs.pprof"))
	}
	// The client's allocations: the cumulative profile before and after,
	// told apart by pprof -base.
	clientAllocs0 := filepath.Join(dir, "client-"+name+"-allocs-before.pprof")
	clientAllocs := filepath.Join(dir, "client-"+name+"-allocs.pprof")
	writeAllocs := func(file string) {
		f, err := os.Create(file)
		if err != nil {
			errs = append(errs, err.Error())
			return
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			errs = append(errs, "client allocations: "+err.Error())
		}
	}
	writeAllocs(clientAllocs0)
	clientCPU := filepath.Join(dir, "client-"+name+"-cpu.pprof")
	cf, err := os.Create(clientCPU)
	if err == nil {
		if err := pprof.StartCPUProfile(cf); err != nil {
			errs = append(errs, "client CPU profile: "+err.Error())
			cf.Close()
			cf = nil
		}
	} else {
		errs = append(errs, err.Error())
	}
	log.Info("profiling", "variant", name, "seconds", secs)
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		b := runBatch(ctx, vr.flow, 2*o.c, o.c, o.size)
		vp.Flows += len(b.samples)
	}
	if cf != nil {
		pprof.StopCPUProfile()
		cf.Close()
		vp.Files = append(vp.Files, clientCPU)
	}
	writeAllocs(clientAllocs)
	vp.Files = append(vp.Files, clientAllocs0, clientAllocs)
	wg.Wait()
	{
		file := filepath.Join(dir, "keycloak-"+name+".jfr")
		if err := stopJFR(ctx, file); err != nil {
			errs = append(errs, err.Error())
		} else {
			vp.Files = append(vp.Files, file)
			folded, sum, err := summarizeJFR(ctx, file, vp.Flows)
			if err != nil {
				errs = append(errs, "jfr print: "+err.Error())
			} else {
				vp.Keycloak = sum
				ff := filepath.Join(dir, "keycloak-"+name+".folded")
				svg := filepath.Join(dir, "keycloak-"+name+".svg")
				if err := writeFolded(ff, folded); err == nil {
					vp.Files = append(vp.Files, ff)
				}
				title := fmt.Sprintf("Keycloak, %s variant: %d JFR execution samples over %d flows (%ds at concurrency %d)", name, sum.Samples, vp.Flows, secs, o.c)
				if err := writeFlameGraph(svg, title, folded); err == nil {
					vp.Files = append(vp.Files, svg)
				} else {
					errs = append(errs, "flame graph: "+err.Error())
				}
				// The uma-ticket grant alone (the token endpoint's stacks).
				grant := subStacks(folded, tokenEndpointFrame)
				gsvg := filepath.Join(dir, "keycloak-"+name+"-token-endpoint.svg")
				n := 0
				for _, c := range grant {
					n += c
				}
				gtitle := fmt.Sprintf("Keycloak's token endpoint (uma-ticket grant), %s variant: %d of %d JFR samples over %d flows", name, n, sum.Samples, vp.Flows)
				if err := writeFlameGraph(gsvg, gtitle, grant); err == nil {
					vp.Files = append(vp.Files, gsvg)
				}
			}
		}
	}
	for _, p := range []struct{ key, file, base string }{
		{compResourceServer + " cpu", rsCPU, ""},
		{compResourceServer + " allocs", filepath.Join(dir, "resource_server-"+name+"-allocs.pprof"), ""},
		{compClaimsProvider + " cpu", cpCPU, ""},
		{compClaimsProvider + " allocs", filepath.Join(dir, "claims_provider-"+name+"-allocs.pprof"), ""},
		{compClient + " cpu", clientCPU, ""},
		{compClient + " allocs", clientAllocs, clientAllocs0},
	} {
		if _, err := os.Stat(p.file); err != nil {
			continue
		}
		var args []string
		if strings.HasSuffix(p.key, "allocs") {
			args = append(args, "-sample_index=alloc_space")
		}
		if p.base != "" {
			args = append(args, "-base", p.base)
		}
		top, err := pprofTop(ctx, p.file, args...)
		if err != nil {
			errs = append(errs, p.key+" pprof -top: "+err.Error())
			continue
		}
		vp.Top[p.key] = top
		_ = os.WriteFile(strings.TrimSuffix(p.file, ".pprof")+"-top.txt", []byte(strings.Join(top, "\n")+"\n"), 0o644)
	}
	sort.Strings(vp.Files)
	if len(errs) > 0 {
		return vp, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return vp, nil
}

// download GETs url into file.
func download(ctx context.Context, url, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, 256<<20)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pprofTop is the head of `go tool pprof -top` of a profile.
func pprofTop(ctx context.Context, file string, args ...string) ([]string, error) {
	args = append(append([]string{"tool", "pprof", "-top", "-nodecount=30"}, args...), file)
	b, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

// summarizeJFR reads the execution samples of a recording (`jfr print`)
// into folded stacks (root first, ';'-separated) and the summary.
func summarizeJFR(ctx context.Context, file string, flows int) (map[string]int, *JFRSummary, error) {
	cmd := exec.CommandContext(ctx, "jfr", "print", "--stack-depth", "1024", "--events", "jdk.ExecutionSample", file)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	folded, stacks := parseJFRSamples(stdout)
	if err := cmd.Wait(); err != nil {
		return nil, nil, err
	}
	return folded, summarizeStacks(stacks, flows), nil
}

// parseJFRSamples reads `jfr print` text: each jdk.ExecutionSample's
// stackTrace lists frames leaf first, "pkg.Class.method(args) line: N".
// It returns folded stacks (short frame names) and the stacks themselves
// (full names, root first).
func parseJFRSamples(r io.Reader) (map[string]int, [][]string) {
	folded := map[string]int{}
	var stacks [][]string
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	var cur []string
	in := false
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case strings.HasPrefix(line, "stackTrace = ["):
			in, cur = true, cur[:0]
		case in && line == "]":
			in = false
			st := make([]string, len(cur))
			for i, f := range cur {
				st[len(cur)-1-i] = f
			}
			stacks = append(stacks, st)
			short := make([]string, len(st))
			for i, f := range st {
				short[i] = shortFrame(f)
			}
			folded[strings.Join(short, ";")]++
		case in:
			if line == "..." {
				cur = append(cur, "[truncated]")
				continue
			}
			if i := strings.IndexByte(line, '('); i > 0 {
				line = line[:i]
			}
			cur = append(cur, line)
		}
	}
	return folded, stacks
}

// shortFrame abbreviates the package: org.keycloak.services.Foo.bar ->
// o.k.s.Foo.bar.
func shortFrame(f string) string {
	parts := strings.Split(f, ".")
	if len(parts) <= 2 {
		return f
	}
	for i := 0; i < len(parts)-2; i++ {
		if parts[i] != "" {
			parts[i] = parts[i][:1]
		}
	}
	return strings.Join(parts, ".")
}

func summarizeStacks(stacks [][]string, flows int) *JFRSummary {
	per := func(n int) float64 {
		if flows == 0 {
			return 0
		}
		return round3(float64(n) / float64(flows))
	}
	sum := &JFRSummary{Samples: len(stacks), SamplesPerFlow: per(len(stacks))}
	grant, policy := map[string]int{}, map[string]int{}
	parts := make([]int, len(jfrParts))
	for _, st := range stacks {
		for i, p := range jfrParts {
			for _, f := range st {
				if strings.HasPrefix(f, p.frame) {
					parts[i]++
					break
				}
			}
		}
		// The UMA grant: the first frame below the outermost
		// AuthorizationTokenService frame that is not one of its own.
		for i, f := range st {
			if !strings.HasPrefix(f, jfrParts[1].frame) {
				continue
			}
			j := i
			for j+1 < len(st) && strings.HasPrefix(st[j+1], jfrParts[1].frame) {
				j++
			}
			callee := "(AuthorizationTokenService itself)"
			if j+1 < len(st) {
				callee = shortFrame(st[j]) + " > " + shortFrame(st[j+1])
			}
			grant[callee]++
			break
		}
		inPolicy := false
		deepest := -1
		for i, f := range st {
			if strings.HasPrefix(f, jfrParts[2].frame) {
				inPolicy = true
			}
			if inPolicy && strings.HasPrefix(f, "dev.umawide.") {
				deepest = i
			}
		}
		if deepest >= 0 {
			frame := shortFrame(st[deepest])
			if deepest+1 < len(st) {
				frame += " > " + shortFrame(st[deepest+1])
			} else {
				frame += " (itself)"
			}
			policy[frame]++
		}
	}
	for i, p := range jfrParts {
		sum.Parts = append(sum.Parts, Share{Frame: p.name, Samples: parts[i], PerFlow: per(parts[i])})
	}
	sum.Grant = topShares(grant, 12, per)
	sum.Policy = topShares(policy, 12, per)
	return sum
}

func topShares(m map[string]int, n int, per func(int) float64) []Share {
	var out []Share
	for k, v := range m {
		out = append(out, Share{Frame: k, Samples: v, PerFlow: per(v)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Samples != out[j].Samples {
			return out[i].Samples > out[j].Samples
		}
		return out[i].Frame < out[j].Frame
	})
	if len(out) > n {
		rest := 0
		for _, s := range out[n:] {
			rest += s.Samples
		}
		out = append(out[:n], Share{Frame: "(the rest)", Samples: rest, PerFlow: per(rest)})
	}
	return out
}

func writeFolded(file string, folded map[string]int) error {
	keys := make([]string, 0, len(folded))
	for k := range folded {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %d\n", k, folded[k])
	}
	return os.WriteFile(file, []byte(b.String()), 0o644)
}

// printProfiles writes the profiles' summary.
func printProfiles(w io.Writer, p *Profiles) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "\nprofiles (%d s per variant, after the measurements; files in %s):\n", p.Seconds, p.Dir)
	for _, v := range p.Variants {
		if k := v.Keycloak; k != nil {
			fmt.Fprintf(w, "  Keycloak, %s: %d JFR samples over %d flows, %.2f per flow\n", v.Name, k.Samples, v.Flows, k.SamplesPerFlow)
			for _, s := range k.Parts {
				fmt.Fprintf(w, "    %-44s %6.2f samples/flow (%d)\n", s.Frame, s.PerFlow, s.Samples)
			}
			for _, s := range k.Policy {
				fmt.Fprintf(w, "      policy  %-80s %6.3f (%d)\n", s.Frame, s.PerFlow, s.Samples)
			}
		}
	}
}
