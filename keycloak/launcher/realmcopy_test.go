package launcher

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBarCopyJSON(t *testing.T) {
	for _, stock := range []bool{false, true} {
		data, err := BarCopyJSON(BarCopy{Name: "bar-copy-x", Stock: stock, ClaimsProviderURL: "http://127.0.0.1:5555/"})
		if err != nil {
			t.Fatal(err)
		}
		var rep map[string]any
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		if rep["realm"] != "bar-copy-x" || rep["id"] != nil {
			t.Fatalf("realm %v id %v", rep["realm"], rep["id"])
		}
		perm := createPermission(rep)
		if perm == nil {
			t.Fatal("no permission on create in the copy")
		}
		applied := perm["config"].(map[string]any)["applyPolicies"]
		want := `["claims token"]`
		if stock {
			want = `["` + StockPolicyName + `"]`
		}
		if applied != want {
			t.Errorf("stock=%v: applyPolicies %v, want %s", stock, applied, want)
		}
		// The claims-token policy trusts the given Claims Provider, and no
		// placeholder is left for the admin API (which does not expand them).
		if !strings.Contains(string(data), `http://127.0.0.1:5555/jwks`) {
			t.Errorf("stock=%v: the Claims Provider's JWKS URL is not in the copy", stock)
		}
		if strings.Contains(string(data), "${UMAWIDE_") {
			t.Errorf("stock=%v: unexpanded placeholder in the copy", stock)
		}
	}
	if _, err := BarCopyJSON(BarCopy{}); err == nil {
		t.Error("a copy without a name was derived")
	}
}
