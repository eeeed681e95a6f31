package attacks

import (
	"testing"

	"github.com/umawide/umawide/internal/e2etest"
)

// TestAttacks runs every attack against one ecosystem. The honest push
// comes first: it shows that the harness can succeed, so that each refusal
// below is the system's and not the harness's.
func TestAttacks(t *testing.T) {
	s := newSuite(t)
	short := s.shortRPT(t) // expires while the groups run; tried last

	t.Run("honest push", func(t *testing.T) {
		c := newContent("honest: " + t.Name())
		rpt, _ := s.rptFor(t, "bob", c, e2etest.AliceEmail)
		m := created(t, s.post(t, "bob", rpt, c))
		if m.SenderEmail != e2etest.AliceEmail || m.SenderIss != s.CPURL || m.SHA256 != c.sha256() {
			t.Errorf("stored %+v", m)
		}
	})
	t.Run("forged claims tokens", s.forged)
	t.Run("pushed claims", s.pushedClaims)
	t.Run("spellings", s.spellings)
	t.Run("Claims Provider requests", s.claimsProviderRequests)
	t.Run("roads to an RPT", s.roads)
	t.Run("RPT misuse", func(t *testing.T) { s.rptMisuse(t, short) })
}
