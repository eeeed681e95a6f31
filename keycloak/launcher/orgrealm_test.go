package launcher

import (
	"encoding/json"
	"strings"
	"testing"
)

// The organisation realm expands to one realm per organisation with the
// defaults docs/JOIN.md promises: discovery on, nothing pinned or blocked,
// https only, anonymous registration bounded by the umawide policy and no
// Trusted Hosts policy (which would refuse every other organisation).
func TestOrganisationRealmJSON(t *testing.T) {
	data, err := OrganisationRealmJSON(Organisation{Realm: "org-x", Domain: "bar.example",
		Users: []OrganisationUser{{Username: "bob", Password: "pw"}}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "${UMAWIDE_") {
		t.Fatalf("placeholder left: %s", data)
	}
	var rep map[string]any
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep["realm"] != "org-x" || rep["displayName"] != "bar.example" || rep["userManagedAccessAllowed"] != false {
		t.Fatalf("realm %v %v %v", rep["realm"], rep["displayName"], rep["userManagedAccessAllowed"])
	}
	conf, _ := Policy(rep, "claims-token")["config"].(map[string]any)
	want := map[string]any{"claimsProviders": "[]", "discoveryEnabled": "true", "blockedDomains": "[]",
		"allowPrivateAddresses": "false", "allowInsecureUrls": "false"}
	for k, v := range want {
		if conf[k] != v {
			t.Errorf("claims-token %s = %v, want %v", k, conf[k], v)
		}
	}
	if perm := createPermission(rep); perm == nil || perm["config"].(map[string]any)["applyPolicies"] != `["`+ClaimsTokenPolicyName+`"]` {
		t.Fatalf("permission on create: %v", perm)
	}
	for _, id := range []string{"rqp-client", "claims-provider", "resource-server", "incoming-app"} {
		if Client(rep, id) == nil {
			t.Errorf("no client %s", id)
		}
	}
	comps := rep["components"].(map[string]any)["org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy"].([]any)
	var anon []string
	for _, c := range comps {
		m := c.(map[string]any)
		if m["subType"] == "anonymous" {
			anon = append(anon, m["providerId"].(string))
		}
	}
	if strings.Join(anon, ",") != "umawide-uma-ticket-only,max-clients,scope,allowed-protocol-mappers,allowed-client-templates" {
		t.Fatalf("anonymous registration policies %v", anon)
	}
	users := rep["users"].([]any)
	bob := users[len(users)-1].(map[string]any)
	if bob["email"] != "bob@bar.example" || bob["emailVerified"] != true {
		t.Fatalf("user %v", bob)
	}
	if _, err := OrganisationRealmJSON(Organisation{Realm: "x"}); err == nil {
		t.Fatal("no domain accepted")
	}
}
