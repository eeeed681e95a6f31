package integration

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/uma"
)

// BenchmarkUMATicketGrant times the uma-ticket grant (seed step 7-8, one
// permission) on a warm Keycloak, once with the claims-token policy and once
// with the stock client policy, both pushing the same claims; the difference is
// the policy's cost per evaluation as a client sees it. Ticket creation and
// token signing are outside the timer. Where Keycloak's log is readable and
// the policy's debug lines are on (this package's own Keycloak), it also
// reports the policy's own time inside Keycloak as policy-us/op.
//
//	go test ./keycloak/extension/integration -run '^$' -bench UMATicketGrant -benchtime 300x -count 3
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
	for _, c := range []struct {
		name  string
		stock bool
	}{{"claims-token", false}, {"stock-client-policy", true}} {
		f := barCopy(b, kc, cp, c.stock)
		b.Run(c.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			one := func() (string, string) {
				ticket := f.ticket(b)
				return ticket, pushed(b, cp.signES256(esHeader(ecKID), f.claims(cp, ticket)), meta)
			}
			// Warm up: JWKS fetched and cached, hot paths compiled.
			for i := 0; i < 30; i++ {
				ticket, ct := one()
				if _, err := f.grant(ctx, ticket, ct); err != nil {
					b.Fatalf("warm-up grant: %v", err)
				}
			}
			logStart := logSize(f)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				ticket, ct := one()
				b.StartTimer()
				if _, err := f.grant(ctx, ticket, ct); err != nil {
					b.Fatalf("grant: %v", err)
				}
			}
			b.StopTimer()
			if !c.stock {
				if us, n := policyMicros(f, logStart); n > 0 {
					b.ReportMetric(us, "policy-us/op")
				}
			}
		})
	}
}

func logPath(f *realmFixture) string {
	if f.kc.LogPath != "" {
		return f.kc.LogPath
	}
	return os.Getenv("KEYCLOAK_LOG")
}

func logSize(f *realmFixture) int64 {
	st, err := os.Stat(logPath(f))
	if err != nil {
		return -1
	}
	return st.Size()
}

var tookRe = regexp.MustCompile(`claims-token policy granted: realm=(\S+) .* took_us=(\d+)`)

// policyMicros averages the policy's own took_us over the grants logged for
// this realm since offset.
func policyMicros(f *realmFixture, offset int64) (float64, int) {
	if offset < 0 {
		return 0, 0
	}
	file, err := os.Open(logPath(f))
	if err != nil {
		return 0, 0
	}
	defer file.Close()
	if _, err := file.Seek(offset, 0); err != nil {
		return 0, 0
	}
	var total float64
	n := 0
	s := bufio.NewScanner(file)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		m := tookRe.FindStringSubmatch(s.Text())
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
