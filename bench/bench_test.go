package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStatFields(t *testing.T) {
	// A command name with spaces and parentheses; utime 250, stime 50 ticks.
	line := []byte("4242 (java (main) x) S 1 4200 4200 0 -1 4194560 100 0 0 0 250 50 7 8 20 0 40 0 1000 0 0\n")
	f, err := statFields(line)
	if err != nil {
		t.Fatal(err)
	}
	if f.pgrp != 4200 || f.cpu != 3*time.Second {
		t.Fatalf("pgrp %d cpu %v, want 4200 and 3s", f.pgrp, f.cpu)
	}
	if _, err := statFields([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("short line accepted")
	}
	// This process's own stat parses and belongs to its own group.
	own, err := procTimes(os.Getpid())
	if err != nil || own < 0 {
		t.Fatalf("own times %v %v", own, err)
	}
	found := false
	for _, p := range groupPIDs(syscallGetpgrp()) {
		found = found || p == os.Getpid()
	}
	if !found {
		t.Error("groupPIDs does not list this process in its own group")
	}
}

func TestParseProcStat(t *testing.T) {
	data := []byte("cpu  100 5 50 800 45 0 0 0 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	busy, total, err := parseProcStat(data)
	if err != nil {
		t.Fatal(err)
	}
	// busy = user+nice+system+irq+softirq+steal = 155 ticks; total adds idle and iowait.
	if busy != 1550*time.Millisecond || total != 10000*time.Millisecond {
		t.Fatalf("busy %v total %v", busy, total)
	}
	if _, _, err := parseProcStat([]byte("intr 1 2 3")); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestStatusKiB(t *testing.T) {
	data := []byte("Name:\tjava\nVmPeak:\t  900 kB\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\n")
	if v, err := statusKiB(data, "VmHWM"); err != nil || v != 2048*1024 {
		t.Fatalf("VmHWM %d %v", v, err)
	}
	if _, err := statusKiB(data, "VmSwap"); err == nil {
		t.Fatal("missing field found")
	}
	if m, ok := (component{Self: true}).peakMemory(); !ok || m <= 0 {
		t.Fatalf("own peak memory %d %v", m, ok)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := summarize(ds)
	if l.N != 100 || l.P50 != 50 || l.P95 != 95 || l.P99 != 99 || l.Max != 100 || l.Mean != 50.5 {
		t.Fatalf("%+v", l)
	}
	if ds[0] != 100*time.Millisecond {
		t.Fatal("summarize sorted its input")
	}
	one := summarize([]time.Duration{7 * time.Millisecond})
	if one.P50 != 7 || one.P99 != 7 {
		t.Fatalf("%+v", one)
	}
	if (summarize(nil) != Latency{}) {
		t.Fatal("empty input")
	}
}

func TestParseGoBench(t *testing.T) {
	out := []byte(`goos: linux
pkg: github.com/umawide/umawide/claims-provider/internal/issuer
BenchmarkIssue/ES256-2         	   20000	     61234 ns/op	     16330 tokens/s	    5000 B/op	      60 allocs/op
BenchmarkIssue/RS256-3072-2    	     300	   4500000 ns/op	       222.2 tokens/s
PASS
pkg: github.com/umawide/umawide/resource-server/internal/store
BenchmarkInsert1KiBSQLiteParallel-2   	 5000	 300000 ns/op	   3.41 MB/s	      3333 msgs/s
--- FAIL: BenchmarkBroken
ok  	github.com/umawide/umawide/resource-server/internal/store	1.6s
`)
	res := parseGoBench(out, 2)
	if len(res) != 3 {
		t.Fatalf("%d results: %+v", len(res), res)
	}
	b, ok := findBench(res, "BenchmarkIssue/ES256")
	if !ok || b.Package != "github.com/umawide/umawide/claims-provider/internal/issuer" || b.Metrics["tokens/s"] != 16330 || b.Metrics["allocs/op"] != 60 || b.Iters != 20000 {
		t.Fatalf("%+v", b)
	}
	b, ok = findBench(res, "BenchmarkInsert1KiBSQLiteParallel")
	if !ok || b.Metrics["msgs/s"] != 3333 || b.Package != "github.com/umawide/umawide/resource-server/internal/store" {
		t.Fatalf("%+v", b)
	}
	if _, ok := findBench(res, "BenchmarkIssue/RS256"); ok {
		t.Fatal("BenchmarkIssue/RS256 matched BenchmarkIssue/RS256-3072")
	}
	if b, ok := findBench(res, "BenchmarkIssue/RS256-3072"); !ok || b.Procs != 2 {
		t.Fatalf("RS256-3072: %+v %v", b, ok)
	}
	// With -cpu 1 there is no suffix to strip: RS256-3072 stays itself.
	one := parseGoBench([]byte("BenchmarkIssue/RS256-3072 \t 300\t 4500000 ns/op\n"), 1)
	if len(one) != 1 || one[0].Name != "BenchmarkIssue/RS256-3072" {
		t.Fatalf("%+v", one)
	}
}

func TestKeycloakMetrics(t *testing.T) {
	before := parseMetrics([]byte(`# TYPE http_server_requests_seconds counter
http_server_requests_seconds_count{method="POST",outcome="SUCCESS",status="200",uri="/realms/{realm}/protocol/{protocol}/token"} 10.0
http_server_requests_seconds_sum{method="POST",outcome="SUCCESS",status="200",uri="/realms/{realm}/protocol/{protocol}/token"} 0.5
jvm_gc_pause_seconds_sum{action="end of minor GC",cause="G1 Evacuation Pause",gc="G1 Young Generation"} 1.0
jvm_memory_used_bytes{area="heap",id="G1 Eden Space"} 1.0E7
umawide_claims_token_policy_seconds_count{outcome="grant"} 5.0
umawide_claims_token_policy_seconds_sum{outcome="grant"} 0.005
umawide_claims_token_policy_seconds_max{outcome="grant"} 0.004
`))
	after := parseMetrics([]byte(`http_server_requests_seconds_count{method="POST",outcome="SUCCESS",status="200",uri="/realms/{realm}/protocol/{protocol}/token"} 30.0
http_server_requests_seconds_sum{method="POST",outcome="SUCCESS",status="200",uri="/realms/{realm}/protocol/{protocol}/token"} 1.5
http_server_requests_seconds_count{method="POST",outcome="SUCCESS",status="201",uri="/realms/{realm}/authz/protection/permission"} 10.0
http_server_requests_seconds_sum{method="POST",outcome="SUCCESS",status="201",uri="/realms/{realm}/authz/protection/permission"} 0.2
jvm_gc_pause_seconds_sum{action="end of minor GC",cause="G1 Evacuation Pause",gc="G1 Young Generation"} 1.25
umawide_claims_token_policy_seconds_count{outcome="grant"} 15.0
umawide_claims_token_policy_seconds_sum{outcome="grant"} 0.009
umawide_claims_token_policy_seconds_count{outcome="deny"} 2.0
umawide_claims_token_policy_seconds_sum{outcome="deny"} 0.001
`))
	if len(before) != 5 {
		t.Fatalf("kept %v", before)
	}
	var d kcDelta
	d.add(before, after)
	eps := d.endpoints(10)
	if len(eps) != 2 || eps[0].Endpoint != "POST /realms/{realm}/protocol/{protocol}/token 200" || eps[0].PerFlow != 2 || eps[0].MsPerRequest != 50 {
		t.Fatalf("%+v", eps)
	}
	if eps[1].PerFlow != 1 || eps[1].MsPerRequest != 20 || d.gcSeconds != 0.25 {
		t.Fatalf("%+v gc %v", eps, d.gcSeconds)
	}
	// The policy: 10 grants that took 4 ms together, 2 denials.
	if ms, n := d.policyMs("grant"); ms != 0.4 || n != 10 {
		t.Fatalf("policy grant %v ms x %v", ms, n)
	}
	if ms, n := d.policyMs("deny"); ms != 0.5 || n != 2 {
		t.Fatalf("policy deny %v ms x %v", ms, n)
	}
}

func TestPolicyP50(t *testing.T) {
	before := parseMetrics([]byte(`umawide_claims_token_policy_seconds_bucket{outcome="grant",le="1.0E-4"} 1.0
umawide_claims_token_policy_seconds_bucket{outcome="grant",le="2.0E-4"} 1.0
umawide_claims_token_policy_seconds_bucket{outcome="grant",le="3.0E-4"} 2.0
umawide_claims_token_policy_seconds_bucket{outcome="grant",le="+Inf"} 2.0
`))
	// 100 grants more: 10 up to 0.1 ms, 30 in (0.1, 0.2], 40 in (0.2, 0.3], 20 above.
	after := parseMetrics([]byte(`umawide_claims_token_policy_seconds_bucket{outcome="grant",le="1.0E-4"} 11.0
umawide_claims_token_policy_seconds_bucket{outcome="grant",le="2.0E-4"} 41.0
umawide_claims_token_policy_seconds_bucket{outcome="grant",le="3.0E-4"} 82.0
umawide_claims_token_policy_seconds_bucket{outcome="grant",le="+Inf"} 102.0
umawide_claims_token_policy_seconds_bucket{outcome="deny",le="+Inf"} 3.0
`))
	var d kcDelta
	d.add(before, after)
	// The 50th of 100 lies 10 into the 40 of (0.2, 0.3]: 0.2 + 0.1 * 10/40 ms.
	if p := d.policyP50Ms("grant"); p != 0.225 {
		t.Fatalf("p50 %v", p)
	}
	// Above the last finite bound: that bound.
	if p := d.policyP50Ms("deny"); p != 0 {
		t.Fatalf("deny p50 %v (a lone +Inf bucket has no bound below it)", p)
	}
	var slow kcDelta
	slow.add(series{}, parseMetrics([]byte(`umawide_claims_token_policy_seconds_bucket{outcome="grant",le="0.05"} 1.0
umawide_claims_token_policy_seconds_bucket{outcome="grant",le="+Inf"} 9.0
`)))
	if p := slow.policyP50Ms("grant"); p != 50 {
		t.Fatalf("slow p50 %v", p)
	}
	var none kcDelta
	if p := none.policyP50Ms("grant"); p != 0 {
		t.Fatalf("no histogram: %v", p)
	}
}

func TestParseGoAllocs(t *testing.T) {
	b, n, ok := parseGoAllocs([]byte("# HELP go_memstats_alloc_bytes_total x\ngo_memstats_alloc_bytes_total 1.5e+06\ngo_memstats_mallocs_total 2000\ngo_memstats_frees_total 10\n"))
	if !ok || b != 1.5e6 || n != 2000 {
		t.Fatalf("%v %v %v", b, n, ok)
	}
	if _, _, ok := parseGoAllocs([]byte("go_memstats_alloc_bytes_total 1\n")); ok {
		t.Fatal("half the counters accepted")
	}
}

func TestEvaluate(t *testing.T) {
	ours := &Variant{Name: "ours", Flows: 100, wall: 10 * time.Second, cpu: map[string]time.Duration{
		compKeycloak: 9 * time.Second, compClaimsProvider: 300 * time.Millisecond, compResourceServer: 200 * time.Millisecond, compClient: 500 * time.Millisecond}}
	stock := &Variant{Name: "stock", Flows: 100, wall: 8 * time.Second, cpu: map[string]time.Duration{compKeycloak: 7 * time.Second}}
	for i := range 100 {
		ours.samples = append(ours.samples, sample{has: [numGroups]bool{grpRPT: true}, groups: [numGroups]time.Duration{grpRPT: time.Duration(10+i%2) * time.Millisecond}})
		stock.samples = append(stock.samples, sample{has: [numGroups]bool{grpRPT: true}, groups: [numGroups]time.Duration{grpRPT: 9 * time.Millisecond}})
	}
	ours.kc.add(series{}, series{})
	ours.kc.policyN["grant"], ours.kc.policySeconds["grant"] = 100, 0.05
	ours.finish()
	stock.finish()
	if ours.PolicyMsPerGrant != 0.5 || ours.PolicyGrantsPerFlow != 1 {
		t.Fatalf("policy %v ms x %v", ours.PolicyMsPerGrant, ours.PolicyGrantsPerFlow)
	}
	if ours.FlowsPerSec != 10 || stock.FlowsPerSec != 12.5 || ours.GoServicesCPUShare != 0.05 {
		t.Fatalf("ours %+v stock %+v", ours, stock)
	}
	r := &Result{GoBenchmark: []GoBench{{Name: "BenchmarkIssue/ES256", Metrics: map[string]float64{"tokens/s": 16000}}}}
	evaluate(r, ours, stock)
	if r.Ratios["flows_per_s"] != 0.8 || r.Ratios["rpt_p50"] != 0.9 {
		t.Fatalf("ratios %v", r.Ratios)
	}
	want := map[string][2]bool{ // name -> known, met
		"full flow vs stock baseline":                    {true, false},
		"RPT step vs stock":                              {true, false}, // 0.9: the target is 0.95
		"claims-token policy's own time per grant":       {true, false},
		"Go services' share of the flow's CPU":           {true, true},
		"Resource Server stored 1 KiB messages/s":        {false, false},
		"Claims Provider ES256 tokens/s on one core":     {true, true},
		"... through the handlers (RPT, SHA-256, store)": {false, false},
	}
	for _, tg := range r.Targets {
		w, ok := want[tg.Name]
		if !ok || tg.Known != w[0] || tg.Met != w[1] {
			t.Errorf("target %+v, want known/met %v", tg, w)
		}
	}
}

func TestParseActiveOpens(t *testing.T) {
	data := []byte("Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens\nTcp: 1 200 120000 -1 11371 6387\nUdp: InDatagrams\nUdp: 5\n")
	if got := parseActiveOpens(data); got != 11371 {
		t.Fatalf("ActiveOpens %d, want 11371", got)
	}
	if got := parseActiveOpens([]byte("Ip: a\nIp: 1\n")); got != 0 {
		t.Fatalf("no Tcp lines: %d", got)
	}
}

func TestCountRoute(t *testing.T) {
	data := []byte(`# HELP claims_provider_http_request_duration_seconds HTTP request latency
claims_provider_http_request_duration_seconds_count{route="/jwks",status="200"} 2
claims_provider_http_request_duration_seconds_count{route="/jwks",status="304"} 1
claims_provider_http_request_duration_seconds_count{route="/claims/token",status="200"} 700
claims_provider_http_request_duration_seconds_sum{route="/jwks",status="200"} 0.01
`)
	if n := countRoute(data, "claims_provider_http_request_duration_seconds_count", "/jwks"); n != 3 {
		t.Fatalf("%d, want 3", n)
	}
}

func TestParseJFRSamplesAndSummary(t *testing.T) {
	text := `jdk.ExecutionSample {
  startTime = 10:17:42.365
  sampledThread = "executor-thread-1" (javaThreadId = 61)
  state = "STATE_RUNNABLE"
  stackTrace = [
    java.security.Signature.verify(byte[]) line: 10
    dev.umawide.keycloak.claims.JwsAlgorithm.verify(Jwk, byte[], byte[]) line: 3
    dev.umawide.keycloak.claims.ClaimsTokenPolicyProvider.evaluate(Evaluation) line: 1
    org.keycloak.authorization.authorization.AuthorizationTokenService.evaluatePermissions(KeycloakIdentity) line: 7
    org.keycloak.authorization.authorization.AuthorizationTokenService.authorize(KeycloakAuthorizationRequest) line: 5
    org.keycloak.protocol.oidc.endpoints.TokenEndpoint.processGrantRequest() line: 2
  ]
}

jdk.ExecutionSample {
  stackTrace = [
    org.keycloak.jose.jws.JWSBuilder.sign() line: 1
    org.keycloak.authorization.authorization.AuthorizationTokenService.createAuthorizationResponse(Object) line: 9
    org.keycloak.authorization.authorization.AuthorizationTokenService.authorize(KeycloakAuthorizationRequest) line: 5
    org.keycloak.protocol.oidc.endpoints.TokenEndpoint.processGrantRequest() line: 2
    ...
  ]
}

jdk.ExecutionSample {
  stackTrace = [
    io.vertx.core.Foo.run() line: 1
  ]
}
`
	folded, stacks := parseJFRSamples(strings.NewReader(text))
	if len(stacks) != 3 || len(folded) != 3 {
		t.Fatalf("%d stacks, folded %v", len(stacks), folded)
	}
	want := "o.k.p.o.e.TokenEndpoint.processGrantRequest;o.k.a.a.AuthorizationTokenService.authorize;o.k.a.a.AuthorizationTokenService.evaluatePermissions;d.u.k.c.ClaimsTokenPolicyProvider.evaluate;d.u.k.c.JwsAlgorithm.verify;j.s.Signature.verify"
	if folded[want] != 1 {
		t.Fatalf("folded %v", folded)
	}
	if folded["[truncated];o.k.p.o.e.TokenEndpoint.processGrantRequest;o.k.a.a.AuthorizationTokenService.authorize;o.k.a.a.AuthorizationTokenService.createAuthorizationResponse;o.k.j.j.JWSBuilder.sign"] != 1 {
		t.Fatalf("truncated stack: %v", folded)
	}
	sum := summarizeStacks(stacks, 2)
	if sum.Samples != 3 || sum.SamplesPerFlow != 1.5 {
		t.Fatalf("%+v", sum)
	}
	parts := map[string]int{}
	for _, p := range sum.Parts {
		parts[strings.TrimSpace(p.Frame)] = p.Samples
	}
	if parts["token endpoint (uma-ticket grant)"] != 2 || parts["claims-token policy (evaluate)"] != 1 || parts["any frame of the extension"] != 1 || parts["permission ticket (protection API)"] != 0 {
		t.Fatalf("parts %v", parts)
	}
	if len(sum.Policy) != 1 || sum.Policy[0].Frame != "d.u.k.c.JwsAlgorithm.verify > j.s.Signature.verify" || sum.Policy[0].PerFlow != 0.5 {
		t.Fatalf("policy %+v", sum.Policy)
	}
	grants := map[string]int{}
	for _, g := range sum.Grant {
		grants[g.Frame] = g.Samples
	}
	if grants["o.k.a.a.AuthorizationTokenService.evaluatePermissions > d.u.k.c.ClaimsTokenPolicyProvider.evaluate"] != 1 ||
		grants["o.k.a.a.AuthorizationTokenService.createAuthorizationResponse > o.k.j.j.JWSBuilder.sign"] != 1 {
		t.Fatalf("grant %+v", sum.Grant)
	}

	svg := renderFlameGraph("test <graph>", folded)
	if !strings.HasPrefix(svg, "<?xml") || !strings.Contains(svg, "test &lt;graph&gt;") || strings.Count(svg, "<rect") < 8 {
		t.Fatalf("svg %s", svg)
	}
	if !strings.Contains(svg, "d.u.k.c.JwsAlgorithm.verify (1 samples, 33.3%)") {
		t.Fatalf("no title for the extension frame: %s", svg)
	}
	sub := subStacks(folded, tokenEndpointFrame)
	if len(sub) != 2 || sub["o.k.p.o.e.TokenEndpoint.processGrantRequest;o.k.a.a.AuthorizationTokenService.authorize;o.k.a.a.AuthorizationTokenService.createAuthorizationResponse;o.k.j.j.JWSBuilder.sign"] != 1 {
		t.Fatalf("token endpoint stacks %v", sub)
	}
}

func TestCopyFileAndGenerate(t *testing.T) {
	dir := t.TempDir()
	src, dst := dir+"/a", dir+"/b"
	if err := generate(src, 3<<20+5); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(src, dst); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dst)
	if len(a) != 3<<20+5 || !bytes.Equal(a, b) || bytes.Equal(a[:1<<20], a[1<<20:2<<20]) {
		t.Fatalf("generated %d bytes, copied %d, equal %v", len(a), len(b), bytes.Equal(a, b))
	}
}
