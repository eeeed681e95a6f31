package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Keycloak's own metrics (management interface /metrics, the launcher
// starts it with --metrics-enabled): which endpoints a flow calls how often
// and how long Keycloak spends in each, so that the caches can be seen to
// be hit (no JWKS, PAT or resource lookups per flow) and the cost of each
// call compared; and the JVM's garbage-collection time.

type series map[string]float64

var kcHTTP = &http.Client{Timeout: 10 * time.Second}

// scrapeKeycloak reads the counters bench uses; nil when there is no
// management URL or it does not answer.
func scrapeKeycloak(ctx context.Context, managementURL string) series {
	if managementURL == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, managementURL+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := kcHTTP.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil
	}
	return parseMetrics(data)
}

// parseMetrics keeps the HTTP request counters and sums and the GC pause
// sum, keyed by their series (name and labels).
func parseMetrics(data []byte) series {
	out := series{}
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, "http_server_requests_seconds_count{") &&
			!strings.HasPrefix(line, "http_server_requests_seconds_sum{") &&
			!strings.HasPrefix(line, policyMetric+"_count{") &&
			!strings.HasPrefix(line, policyMetric+"_sum{") &&
			!strings.HasPrefix(line, policyMetric+"_bucket{") &&
			!strings.HasPrefix(line, "jvm_gc_pause_seconds_sum") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] += v
	}
	return out
}

var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

func labels(id string) map[string]string {
	i := strings.IndexByte(id, '{')
	out := map[string]string{}
	if i < 0 {
		return out
	}
	for _, m := range labelRE.FindAllStringSubmatch(id[i:], -1) {
		out[m[1]] = m[2]
	}
	return out
}

// KCEndpoint is one Keycloak endpoint's share of a variant's flows.
type KCEndpoint struct {
	Endpoint     string  `json:"endpoint"` // METHOD uri status
	PerFlow      float64 `json:"requests_per_flow"`
	MsPerRequest float64 `json:"ms_per_request"` // Keycloak's own time per request (wall, not CPU)
}

// policyMetric is the claims-token policy's own time per evaluation
// (the extension's PolicyMetrics), labelled outcome="grant" or "deny".
const policyMetric = "umawide_claims_token_policy_seconds"

// kcDelta accumulates per-endpoint deltas between two scrapes.
type kcDelta struct {
	count, sum map[string]float64
	gcSeconds  float64
	// the policy's evaluations and their own time, by outcome
	policyN, policySeconds map[string]float64
	// the policy's histogram: evaluations of at most le seconds, by
	// outcome and le (cumulative, as Prometheus writes it)
	policyLE map[string]map[float64]float64
}

// policyP50Ms is the median of the policy's own time per evaluation with
// that outcome, in ms, interpolated linearly within the histogram bucket
// that holds it (the extension's buckets are 50-250 µs wide where the
// target lies); 0 without a histogram. A median above the last finite
// bucket is reported as that bucket's bound.
func (d *kcDelta) policyP50Ms(outcome string) float64 {
	buckets := d.policyLE[outcome]
	if len(buckets) == 0 {
		return 0
	}
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	total := buckets[les[len(les)-1]] // +Inf: every evaluation
	if total <= 0 {
		return 0
	}
	half := total / 2
	prevLE, prevN := 0.0, 0.0
	for _, le := range les {
		n := buckets[le]
		if n >= half {
			if math.IsInf(le, 1) {
				return round3(1000 * prevLE)
			}
			frac := 0.0
			if n > prevN {
				frac = (half - prevN) / (n - prevN)
			}
			return round3(1000 * (prevLE + frac*(le-prevLE)))
		}
		prevLE, prevN = le, n
	}
	return 0
}

// policyMs is the policy's mean own time per evaluation with that outcome,
// in ms, and how many there were.
func (d *kcDelta) policyMs(outcome string) (ms float64, n float64) {
	n = d.policyN[outcome]
	if n == 0 {
		return 0, 0
	}
	return round3(1000 * d.policySeconds[outcome] / n), n
}

func (d *kcDelta) add(before, after series) {
	if before == nil || after == nil {
		return
	}
	if d.count == nil {
		d.count, d.sum = map[string]float64{}, map[string]float64{}
		d.policyN, d.policySeconds = map[string]float64{}, map[string]float64{}
		d.policyLE = map[string]map[float64]float64{}
	}
	for id, a := range after {
		diff := a - before[id]
		if diff <= 0 {
			continue
		}
		switch {
		case strings.HasPrefix(id, "jvm_gc_pause_seconds_sum"):
			d.gcSeconds += diff
		case strings.HasPrefix(id, policyMetric+"_count{"):
			d.policyN[labels(id)["outcome"]] += diff
		case strings.HasPrefix(id, policyMetric+"_sum{"):
			d.policySeconds[labels(id)["outcome"]] += diff
		case strings.HasPrefix(id, policyMetric+"_bucket{"):
			l := labels(id)
			le, err := strconv.ParseFloat(l["le"], 64) // "+Inf" parses as +Inf
			if err != nil {
				continue
			}
			if d.policyLE[l["outcome"]] == nil {
				d.policyLE[l["outcome"]] = map[float64]float64{}
			}
			d.policyLE[l["outcome"]][le] += diff
		case strings.HasPrefix(id, "http_server_requests_seconds_"):
			l := labels(id)
			key := l["method"] + " " + l["uri"] + " " + l["status"]
			if strings.HasPrefix(id, "http_server_requests_seconds_count") {
				d.count[key] += diff
			} else {
				d.sum[key] += diff
			}
		}
	}
}

// endpoints lists the endpoints by requests per flow.
func (d *kcDelta) endpoints(flows int) []KCEndpoint {
	var out []KCEndpoint
	for key, n := range d.count {
		e := KCEndpoint{Endpoint: key}
		if flows > 0 {
			e.PerFlow = round3(n / float64(flows))
		}
		if n > 0 {
			e.MsPerRequest = round3(1000 * d.sum[key] / n)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PerFlow != out[j].PerFlow {
			return out[i].PerFlow > out[j].PerFlow
		}
		return out[i].Endpoint < out[j].Endpoint
	})
	return out
}

// jwksFetches reads how often the Claims Provider at cpURL served its JWKS
// (its /metrics, route /jwks): Keycloak's claims-token policy fetches it,
// and caches it; nil-safe, -1 when it cannot be read.
func jwksFetches(ctx context.Context, cpURL string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cpURL+"/metrics", nil)
	if err != nil {
		return -1
	}
	resp, err := kcHTTP.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return -1
	}
	return countRoute(data, "claims_provider_http_request_duration_seconds_count", "/jwks")
}

// countRoute sums a counter's series whose route label is route.
func countRoute(data []byte, name, route string) int {
	n := 0.0
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || labels(line[:i])["route"] != route {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			n += v
		}
	}
	return int(n)
}

// goAllocs reads a Go service's allocation counters from its /metrics (the
// Prometheus Go collector): bytes and objects allocated so far; ok false
// when they cannot be read.
func goAllocs(ctx context.Context, base string) (allocBytes, objects float64, ok bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, 0, false
	}
	resp, err := kcHTTP.Do(req)
	if err != nil {
		return 0, 0, false
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, 0, false
	}
	return parseGoAllocs(data)
}

func parseGoAllocs(data []byte) (allocBytes, objects float64, ok bool) {
	var haveB, haveO bool
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "go_memstats_alloc_bytes_total":
			allocBytes, haveB = v, true
		case "go_memstats_mallocs_total":
			objects, haveO = v, true
		}
	}
	return allocBytes, objects, haveB && haveO
}
