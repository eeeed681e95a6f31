package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Component names, in the order the table shows them.
const (
	compKeycloak       = "keycloak"
	compClaimsProvider = "claims_provider"
	compResourceServer = "resource_server"
	compClient         = "client"
)

var componentOrder = []string{compKeycloak, compClaimsProvider, compResourceServer, compClient}

// Variant is one flow's figures.
type Variant struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Flows       int                `json:"flows"`
	Errors      int                `json:"errors"`
	ErrorSample []string           `json:"error_sample,omitempty"`
	Retried     int                `json:"retried"` // pushes that needed a second attempt
	WallSeconds float64            `json:"wall_s"`
	FlowsPerSec float64            `json:"flows_per_s"`
	Total       Latency            `json:"flow"`
	Steps       map[string]Latency `json:"steps"`
	// CPUSeconds per component during this variant's batches (Keycloak:
	// every process of its group; client: this process, getrusage).
	CPUSeconds map[string]float64 `json:"cpu_s"`
	// CPUMsPerFlow is CPUSeconds per stored message.
	CPUMsPerFlow map[string]float64 `json:"cpu_ms_per_flow"`
	// GoServicesCPUShare is (Claims Provider + Resource Server) / (all four).
	GoServicesCPUShare float64 `json:"go_services_cpu_share"`
	// KeycloakEndpoints: Keycloak's requests per flow by endpoint and its
	// own time per request (its /metrics), from every client: the flow's
	// and the services'.
	KeycloakEndpoints []KCEndpoint `json:"keycloak_requests,omitempty"`
	// KeycloakGCSeconds is the JVM's GC pause time during the batches.
	KeycloakGCSeconds float64 `json:"keycloak_gc_pause_s"`
	// ClientConnectsPerFlow: TCP connections the client opened per flow.
	ClientConnectsPerFlow float64 `json:"client_connects_per_flow"`
	// TCPConnectsPerFlow: TCP connects per flow in the whole network
	// namespace (client, services, Keycloak; other work on the machine too).
	TCPConnectsPerFlow float64 `json:"tcp_connects_per_flow"`
	// PolicyMsPerGrant is the claims-token policy's own time per granting
	// evaluation (Keycloak's /metrics, the extension's timer), wall time
	// inside Keycloak; PolicyGrantsPerFlow how many there were per flow.
	PolicyMsPerGrant    float64 `json:"policy_ms_per_grant,omitempty"`
	PolicyP50MsPerGrant float64 `json:"policy_p50_ms_per_grant,omitempty"` // the median (its histogram)
	PolicyGrantsPerFlow float64 `json:"policy_grants_per_flow,omitempty"`
	PolicyDenials       int     `json:"policy_denials,omitempty"`
	// AllocKiBPerFlow and AllocsPerFlow: what the client (this process)
	// and the Resource Server allocated per flow (Go's memstats).
	AllocKiBPerFlow map[string]float64 `json:"alloc_kib_per_flow,omitempty"`
	AllocsPerFlow   map[string]float64 `json:"allocs_per_flow,omitempty"`
	// AtConcurrency1 is the same flow one push at a time (-latency-n).
	AtConcurrency1 *Concurrency1 `json:"at_concurrency_1,omitempty"`

	samples []sample
	wall    time.Duration
	cpu     map[string]time.Duration
	kc      kcDelta
	alloc   map[string][2]float64 // role -> bytes, objects

	tcpOpens, clientDials int64
}

// Concurrency1 is a variant's latency with one push at a time on a warm
// stack: what a person pushing a file waits, without queueing.
type Concurrency1 struct {
	Flows            int                `json:"flows"`
	Errors           int                `json:"errors"`
	Flow             Latency            `json:"flow"`
	Steps            map[string]Latency `json:"steps"`
	CPUMsPerFlow     map[string]float64 `json:"cpu_ms_per_flow"`
	PolicyMsPerGrant float64            `json:"policy_ms_per_grant,omitempty"`
	PolicyP50Ms      float64            `json:"policy_p50_ms_per_grant,omitempty"`
}

func (v *Variant) concurrency1() *Concurrency1 {
	return &Concurrency1{Flows: v.Flows, Errors: v.Errors, Flow: v.Total, Steps: v.Steps, CPUMsPerFlow: v.CPUMsPerFlow,
		PolicyMsPerGrant: v.PolicyMsPerGrant, PolicyP50Ms: v.PolicyP50MsPerGrant}
}

// addAllocs adds the allocation counters' growth between two reads.
func (v *Variant) addAllocs(before, after map[string][2]float64) {
	if v.alloc == nil {
		v.alloc = map[string][2]float64{}
	}
	for role, a := range after {
		b, ok := before[role]
		if !ok {
			continue
		}
		cur := v.alloc[role]
		v.alloc[role] = [2]float64{cur[0] + a[0] - b[0], cur[1] + a[1] - b[1]}
	}
}

// Target is one of the targets, met or missed.
type Target struct {
	Name  string  `json:"name"`
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Met   bool    `json:"met"`
	Known bool    `json:"known"` // false: not measured in this run
	Basis string  `json:"basis"`
}

// Load is the machine's load while the flows ran.
type Load struct {
	Before   [3]float64 `json:"loadavg_before"`
	After    [3]float64 `json:"loadavg_after"`
	Min1     float64    `json:"loadavg1_min"`
	Max1     float64    `json:"loadavg1_max"`
	Mean1    float64    `json:"loadavg1_mean"`
	Busy     float64    `json:"machine_busy_share"`  // all cores busy / all cores, during the batches
	Ours     float64    `json:"our_processes_share"` // the four components / all cores
	Others   float64    `json:"other_processes_share"`
	Disclaim string     `json:"note,omitempty"`
}

// Result is the JSON file.
type Result struct {
	StartedAt  time.Time          `json:"started_at"`
	Seconds    float64            `json:"duration_s"`
	Config     RunConfig          `json:"config"`
	Machine    Machine            `json:"machine"`
	Load       Load               `json:"load"`
	Variants   []*Variant         `json:"variants"`
	Ratios     map[string]float64 `json:"ratios"`
	PeakMemMiB map[string]float64 `json:"peak_memory_mib"`
	// CPJWKSFetches: how often Keycloak fetched the Claims Provider's JWKS
	// during the whole run, warm-up included (-1: unknown).
	CPJWKSFetches int `json:"claims_provider_jwks_fetches"`
	// Profiles: where each variant's CPU goes (-profile).
	Profiles *Profiles `json:"profiles,omitempty"`
	// Large is the large-content run (-large-size).
	Large       *LargeRun `json:"large_content,omitempty"`
	GoBenchmark []GoBench `json:"go_benchmarks,omitempty"`
	Targets     []Target  `json:"targets"`
	Notes       []string  `json:"notes,omitempty"`
}

// RunConfig is what the run was asked to do.
type RunConfig struct {
	Pushes         int    `json:"pushes_per_variant"`
	Concurrency    int    `json:"concurrency"`
	Batch          int    `json:"batch"`
	Warmup         int    `json:"warmup_per_variant"`
	MessageBytes   int    `json:"message_bytes"`
	KeycloakMode   string `json:"keycloak_mode"`
	KeycloakHeap   string `json:"keycloak_max_heap,omitempty"`
	KeycloakOpts   string `json:"keycloak_java_opts,omitempty"`
	ClaimsAlg      string `json:"claims_provider_alg"`
	GoBenchtime    string `json:"go_benchtime,omitempty"`
	KeycloakVer    string `json:"keycloak_version"`
	StoreBackend   string `json:"resource_server_store"`
	ExtraRSFlags   string `json:"resource_server_flags,omitempty"`
	CompareHeap    string `json:"compare_keycloak_max_heap,omitempty"`
	CompareOpts    string `json:"compare_keycloak_java_opts,omitempty"`
	CompareEnv     string `json:"compare_keycloak_env,omitempty"`
	KeycloakEnv    string `json:"keycloak_env,omitempty"`
	GitDescription string `json:"git,omitempty"`
}

// finish computes a variant's figures from its samples.
func (v *Variant) finish() {
	v.WallSeconds = round3(v.wall.Seconds())
	if v.wall > 0 {
		v.FlowsPerSec = round3(float64(v.Flows) / v.wall.Seconds())
	}
	var totals []time.Duration
	groups := make([][]time.Duration, numGroups)
	for _, s := range v.samples {
		totals = append(totals, s.total)
		for g := range numGroups {
			if s.has[g] {
				groups[g] = append(groups[g], s.groups[g])
			}
		}
	}
	v.Total = summarize(totals)
	v.Steps = map[string]Latency{}
	for g := range numGroups {
		if len(groups[g]) > 0 {
			v.Steps[groupNames[g]] = summarize(groups[g])
		}
	}
	v.CPUSeconds = map[string]float64{}
	v.CPUMsPerFlow = map[string]float64{}
	var all, goSvc float64
	for name, d := range v.cpu {
		v.CPUSeconds[name] = round3(d.Seconds())
		if v.Flows > 0 {
			v.CPUMsPerFlow[name] = round3(d.Seconds() * 1000 / float64(v.Flows))
		}
		all += d.Seconds()
		if name == compClaimsProvider || name == compResourceServer {
			goSvc += d.Seconds()
		}
	}
	v.GoServicesCPUShare = ratio(goSvc, all)
	v.KeycloakEndpoints = v.kc.endpoints(v.Flows)
	if v.Flows > 0 {
		v.ClientConnectsPerFlow = round3(float64(v.clientDials) / float64(v.Flows))
		v.TCPConnectsPerFlow = round3(float64(v.tcpOpens) / float64(v.Flows))
	}
	v.KeycloakGCSeconds = round3(v.kc.gcSeconds)
	if ms, n := v.kc.policyMs("grant"); n > 0 {
		v.PolicyMsPerGrant = ms
		v.PolicyP50MsPerGrant = v.kc.policyP50Ms("grant")
		if v.Flows > 0 {
			v.PolicyGrantsPerFlow = round3(n / float64(v.Flows))
		}
	}
	_, denied := v.kc.policyMs("deny")
	v.PolicyDenials = int(denied)
	if v.Flows > 0 && len(v.alloc) > 0 {
		v.AllocKiBPerFlow, v.AllocsPerFlow = map[string]float64{}, map[string]float64{}
		for role, a := range v.alloc {
			v.AllocKiBPerFlow[role] = round3(a[0] / 1024 / float64(v.Flows))
			v.AllocsPerFlow[role] = round3(a[1] / float64(v.Flows))
		}
	}
}

// printTable writes the readable summary.
func printTable(w io.Writer, r *Result) {
	fmt.Fprintf(w, "\n== umawide bench: %d pushes per variant, concurrency %d, batches of %d alternating, %d-byte messages\n",
		r.Config.Pushes, r.Config.Concurrency, r.Config.Batch, r.Config.MessageBytes)
	fmt.Fprintf(w, "machine: %d cores, %s, %d MiB; load average 1 min %.2f..%.2f (mean %.2f); CPU busy %.0f%% (ours %.0f%%, others %.0f%%)\n",
		r.Machine.NProc, r.Machine.CPUModel, r.Machine.MemTotalMiB, r.Load.Min1, r.Load.Max1, r.Load.Mean1,
		100*r.Load.Busy, 100*r.Load.Ours, 100*r.Load.Others)
	if r.Load.Disclaim != "" {
		fmt.Fprintf(w, "NOTE: %s\n", r.Load.Disclaim)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nvariant\tflows\terrors\tflows/s\tflow p50\tp95\tp99\t")
	for _, v := range r.Variants {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f ms\t%.1f ms\t%.1f ms\t\n", v.Name, v.Flows, v.Errors, v.FlowsPerSec, v.Total.P50, v.Total.P95, v.Total.P99)
	}
	tw.Flush()

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nstep (ms)\t"+strings.Join(variantCols(r, "p50", "p95", "p99"), "\t")+"\t")
	for g := range numGroups {
		name := groupNames[g]
		row := []string{name}
		for _, v := range r.Variants {
			l, ok := v.Steps[name]
			if !ok {
				row = append(row, "-", "-", "-")
				continue
			}
			row = append(row, fmt.Sprintf("%.2f", l.P50), fmt.Sprintf("%.2f", l.P95), fmt.Sprintf("%.2f", l.P99))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nCPU\t"+strings.Join(variantCols(r, "s", "ms/flow"), "\t")+"\tpeak RSS\t")
	for _, c := range componentOrder {
		row := []string{c}
		for _, v := range r.Variants {
			if s, ok := v.CPUSeconds[c]; ok {
				row = append(row, fmt.Sprintf("%.2f", s), fmt.Sprintf("%.2f", v.CPUMsPerFlow[c]))
			} else {
				row = append(row, "n/a", "n/a")
			}
		}
		mem := "n/a"
		if m, ok := r.PeakMemMiB[c]; ok {
			mem = fmt.Sprintf("%.0f MiB", m)
		}
		fmt.Fprintln(tw, strings.Join(append(row, mem), "\t")+"\t")
	}
	var extra []string
	for name, m := range r.PeakMemMiB {
		if !slices.Contains(componentOrder, name) {
			extra = append(extra, fmt.Sprintf("%s %.0f MiB", name, m))
		}
	}
	slices.Sort(extra)
	row := []string{"TCP connects/flow (client, all)"}
	for _, v := range r.Variants {
		row = append(row, fmt.Sprintf("%.2f", v.ClientConnectsPerFlow), fmt.Sprintf("%.2f", v.TCPConnectsPerFlow))
	}
	fmt.Fprintln(tw, strings.Join(append(row, ""), "\t")+"\t")
	row = []string{"Go services share"}
	for _, v := range r.Variants {
		row = append(row, fmt.Sprintf("%.1f%%", 100*v.GoServicesCPUShare), "")
	}
	fmt.Fprintln(tw, strings.Join(append(row, ""), "\t")+"\t")
	tw.Flush()
	if len(extra) > 0 {
		fmt.Fprintln(w, "peak RSS of the others: "+strings.Join(extra, ", "))
	}

	for _, v := range r.Variants {
		if len(v.KeycloakEndpoints) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nKeycloak requests per %s flow (its /metrics; GC pauses %.2f s):\n", v.Name, v.KeycloakGCSeconds)
		for _, e := range v.KeycloakEndpoints {
			if e.PerFlow < 0.005 {
				continue
			}
			fmt.Fprintf(w, "  %6.2f x %-72s %7.2f ms\n", e.PerFlow, e.Endpoint, e.MsPerRequest)
		}
	}
	if hasC1(r) {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "\nat concurrency 1 (warm, one push at a time)\tflows\terrors\tflow p50\tp99\tRPT p50\tp99\tpolicy ms/grant\tp50\t")
		for _, v := range r.Variants {
			c := v.AtConcurrency1
			if c == nil {
				continue
			}
			rpt := c.Steps[groupNames[grpRPT]]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f ms\t%.1f ms\t%.2f ms\t%.2f ms\t%s\t%s\t\n", v.Name, c.Flows, c.Errors, c.Flow.P50, c.Flow.P99, rpt.P50, rpt.P99, orDash(c.PolicyMsPerGrant), orDash(c.PolicyP50Ms))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	for _, v := range r.Variants {
		if v.PolicyMsPerGrant > 0 {
			fmt.Fprintf(w, "claims-token policy (%s, concurrency %d): %.3f ms own time per grant (p50 %s), %.2f grants per flow, %d denials\n",
				v.Name, r.Config.Concurrency, v.PolicyMsPerGrant, orDash(v.PolicyP50MsPerGrant), v.PolicyGrantsPerFlow, v.PolicyDenials)
		}
	}
	for _, v := range r.Variants {
		if len(v.AllocKiBPerFlow) == 0 {
			continue
		}
		var parts []string
		for _, c := range []string{compResourceServer, compClient} {
			if kib, ok := v.AllocKiBPerFlow[c]; ok {
				parts = append(parts, fmt.Sprintf("%s %.1f KiB in %.0f objects", c, kib, v.AllocsPerFlow[c]))
			}
		}
		fmt.Fprintf(w, "allocations per %s flow: %s\n", v.Name, strings.Join(parts, ", "))
	}
	printProfiles(w, r.Profiles)
	printLarge(w, r.Large)
	if r.CPJWKSFetches >= 0 && len(r.Variants) > 0 {
		fmt.Fprintf(w, "\nthe Claims Provider's JWKS was fetched %d times in the whole run (Keycloak's extension caches it)\n", r.CPJWKSFetches)
	}
	fmt.Fprintln(w)
	for _, k := range []string{"flows_per_s", "rpt_p50", "rpt_mean", "flow_p50_c1", "rpt_p50_c1"} {
		if v, ok := r.Ratios[k]; ok {
			fmt.Fprintf(w, "ratio %-12s %.3f\n", k, v)
		}
	}
	fmt.Fprintln(w, "\ntargets (benchmarks, not assertions):")
	for _, t := range r.Targets {
		status := "MISSED"
		switch {
		case !t.Known:
			status = "not measured"
		case t.Met:
			status = "met"
		}
		fmt.Fprintf(w, "  %-52s %-10s %10.3f %-8s %s\n", t.Name+" ("+t.Goal+")", status, t.Value, t.Unit, t.Basis)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func hasC1(r *Result) bool {
	for _, v := range r.Variants {
		if v.AtConcurrency1 != nil {
			return true
		}
	}
	return false
}

func orDash(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

func variantCols(r *Result, cols ...string) []string {
	var out []string
	for _, v := range r.Variants {
		for i, c := range cols {
			if i == 0 {
				out = append(out, v.Name+" "+c)
			} else {
				out = append(out, c)
			}
		}
	}
	return out
}

// evaluate fills the ratios and the targets.
func evaluate(r *Result, ours, stock *Variant) {
	r.Ratios = map[string]float64{}
	if ours != nil && stock != nil {
		r.Ratios["flows_per_s"] = ratio(ours.FlowsPerSec, stock.FlowsPerSec)
		// The RPT step as a rate: stock's time over ours (1 = as fast).
		r.Ratios["rpt_p50"] = ratio(stock.Steps[groupNames[grpRPT]].P50, ours.Steps[groupNames[grpRPT]].P50)
		r.Ratios["rpt_mean"] = ratio(stock.Steps[groupNames[grpRPT]].Mean, ours.Steps[groupNames[grpRPT]].Mean)
	}
	add := func(name, goal, unit, basis string, value float64, known, met bool) {
		r.Targets = append(r.Targets, Target{Name: name, Goal: goal, Value: value, Unit: unit, Known: known, Met: known && met, Basis: basis})
	}
	if ours != nil && stock != nil && ours.AtConcurrency1 != nil && stock.AtConcurrency1 != nil {
		r.Ratios["flow_p50_c1"] = ratio(stock.AtConcurrency1.Flow.P50, ours.AtConcurrency1.Flow.P50)
		r.Ratios["rpt_p50_c1"] = ratio(stock.AtConcurrency1.Steps[groupNames[grpRPT]].P50, ours.AtConcurrency1.Steps[groupNames[grpRPT]].P50)
	}
	v, ok := r.Ratios["flows_per_s"]
	add("full flow vs stock baseline", ">= 0.95", "x", "flows/s ours / stock, same run, alternating batches", v, ok, v >= 0.95)
	v, ok = r.Ratios["rpt_p50"]
	add("RPT step vs stock", ">= 0.95", "x", "stock RPT p50 / ours (steps 7-8)", v, ok, v >= 0.95)
	if ours != nil {
		pv, basis := ours.PolicyMsPerGrant, fmt.Sprintf("Keycloak's %s, concurrency %d", policyMetric, r.Config.Concurrency)
		if c := ours.AtConcurrency1; c != nil && c.PolicyMsPerGrant > 0 {
			pv, basis = c.PolicyMsPerGrant, "Keycloak's "+policyMetric+", warm, concurrency 1, mean (p50 "+orDash(c.PolicyP50Ms)+")"
		}
		add("claims-token policy's own time per grant", "<= 0.3", "ms", basis, pv, pv > 0, pv <= 0.3)
	}
	known := ours != nil && ours.CPUSeconds[compKeycloak] > 0
	share := 0.0
	if ours != nil {
		share = ours.GoServicesCPUShare
	}
	add("Go services' share of the flow's CPU", "< 10%", "%", "(Claims Provider + Resource Server) / (Keycloak + both + client)", round3(100*share), known, share < 0.10)
	if l := r.Large; l != nil {
		add("large content through the whole flow vs copying it on the same disk", ">= 0.7", "x",
			fmt.Sprintf("%d bytes, one push, same run", l.Bytes), l.RatioToCopy, l.Error == "" && l.RatioToCopy > 0, l.RatioToCopy >= 0.7)
	}
	b, ok := findBench(r.GoBenchmark, "BenchmarkInsert1KiBSQLiteParallel")
	add("Resource Server stored 1 KiB messages/s", ">= 2000", "msgs/s", "BenchmarkInsert1KiBSQLiteParallel (SQLite, synchronous=FULL, concurrent inserts)", b.Metrics["msgs/s"], ok, b.Metrics["msgs/s"] >= 2000)
	b, ok = findBench(r.GoBenchmark, "BenchmarkPost1KiBParallel")
	add("... through the handlers (RPT, SHA-256, store)", ">= 2000", "msgs/s", "BenchmarkPost1KiBParallel", b.Metrics["msgs/s"], ok, b.Metrics["msgs/s"] >= 2000)
	b, ok = findBench(r.GoBenchmark, "BenchmarkIssue/ES256")
	add("Claims Provider ES256 tokens/s on one core", ">= 10000", "tokens/s", "BenchmarkIssue/ES256 -cpu 1", b.Metrics["tokens/s"], ok, b.Metrics["tokens/s"] >= 10000)
}
