package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/uma"
)

// BenchmarkUMATicketGrant times the uma-ticket grant (seed steps 7-8, one
// permission) on a warm Keycloak in two realms that differ only in the policy
// the create permission applies: the claims-token policy, and the stock client
// policy. Both receive the same pushed claims; each iteration does one grant in
// each realm, alternating, so that load on a shared machine hits both alike.
// Ticket creation and token signing are outside the timings. It reports the
// medians (claims-token-us/op, stock-us/op), their difference (delta-us/op: the
// policy's cost as a client sees it) and, where Keycloak's log is readable with
// the policy's debug lines on (this package's own Keycloak), the policy's own
// mean time inside Keycloak (policy-us/op). ns/op covers both grants and is
// not the figure to read.
//
//	go test ./keycloak/extension/integration -run '^$' -bench UMATicketGrant -benchtime 1000x
func BenchmarkUMATicketGrant(b *testing.B) {
	kc := kctest.Keycloak(b)
	cp := newClaimsProvider(b)
	content := []byte("benchmark message\n")
	sum := sha256.Sum256(content)
	meta := map[string]string{
		uma.ClaimContentSHA256: hex.EncodeToString(sum[:]),
		uma.ClaimContentLength: strconv.Itoa(len(content)),
		uma.ClaimContentType:   "text/plain",
		uma.ClaimFileName:      "bench.txt",
	}
	policy := barCopy(b, kc, cp, false)
	stock := barCopy(b, kc, cp, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	grant := func(f *realmFixture) time.Duration {
		ticket := f.ticket(b)
		ct := pushed(b, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), meta)
		start := time.Now()
		_, err := f.grant(ctx, ticket, ct)
		d := time.Since(start)
		if err != nil {
			b.Fatalf("grant in %s: %v", f.name, err)
		}
		return d
	}
	// Warm up: JWKS fetched and cached, hot paths compiled.
	for i := 0; i < 50; i++ {
		grant(policy)
		grant(stock)
	}
	logStart := kctest.MarkLog(kctest.KeycloakLog(policy.kc))
	var withPolicy, withStock []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			withPolicy = append(withPolicy, grant(policy))
			withStock = append(withStock, grant(stock))
		} else {
			withStock = append(withStock, grant(stock))
			withPolicy = append(withPolicy, grant(policy))
		}
	}
	b.StopTimer()
	p, s := median(withPolicy), median(withStock)
	b.ReportMetric(float64(p.Microseconds()), "claims-token-us/op")
	b.ReportMetric(float64(s.Microseconds()), "stock-us/op")
	b.ReportMetric(float64((p - s).Microseconds()), "delta-us/op")
	if us, n := policyMicros(policy, logStart); n > 0 {
		b.ReportMetric(us, "policy-us/op")
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

var tookRe = regexp.MustCompile(`claims-token policy granted: realm=(\S+) .* took_us=(\d+)`)

// policyMicros averages the policy's own took_us over the grants logged for
// this realm since mark.
func policyMicros(f *realmFixture, mark kctest.LogMark) (float64, int) {
	var total float64
	n := 0
	for _, line := range mark.Lines("claims-token policy granted: realm=" + f.name + " ") {
		m := tookRe.FindStringSubmatch(line)
		if m == nil || m[1] != f.name {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		total += v
		n++
	}
	if n == 0 {
		return 0, 0
	}
	return total / float64(n), n
}
