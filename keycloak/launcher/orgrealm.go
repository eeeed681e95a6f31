package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// OrganisationRealmFile is the one realm an organisation of the wide
// ecosystem imports (issue 14), relative to RealmDir: AuthN for its users,
// its Claims Provider's clients, and the UMA AS protecting their Incomings.
// It lives in a folder of its own, so the development stack's Keycloak
// (which imports RealmDir/*-realm.json) does not import it.
const OrganisationRealmFile = "org/organisation-realm.json"

// Organisation parameterises the organisation realm.
type Organisation struct {
	// Realm is the realm's name (UMAWIDE_REALM; required here, the file's
	// default is "umawide").
	Realm string
	// Domain is the organisation's email domain (UMAWIDE_DOMAIN).
	Domain string
	// Vars are further placeholders of the file (UMAWIDE_CLAIMS_PROVIDERS,
	// UMAWIDE_BLOCKED_DOMAINS, UMAWIDE_DCR_MAX_REGISTRATIONS, ...: see
	// docs/JOIN.md); a placeholder not given takes the environment's value,
	// else the file's default, as Keycloak's import would.
	Vars map[string]string
	// Users are added to the realm: the file has none (an organisation
	// brings its own users), tests and demos need some.
	Users []OrganisationUser
}

// OrganisationUser is a person of the organisation: enabled, email
// verified, email username@Domain unless Email is set.
type OrganisationUser struct {
	Username, Password, Email string
}

// OrganisationRealmJSON is the organisation realm of o, placeholders
// expanded, with o's users: what ImportRealm takes, or what a Keycloak
// started for one organisation imports from its data/import folder.
func OrganisationRealmJSON(o Organisation) ([]byte, error) {
	if o.Realm == "" || o.Domain == "" {
		return nil, errors.New("launcher: an organisation realm needs a realm name and a domain")
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(RealmDir(root), OrganisationRealmFile))
	if err != nil {
		return nil, err
	}
	vars := map[string]string{"UMAWIDE_REALM": o.Realm, "UMAWIDE_DOMAIN": o.Domain}
	for k, v := range o.Vars {
		vars[k] = v
	}
	var rep map[string]any
	if err := json.Unmarshal(ExpandPlaceholders(raw, vars), &rep); err != nil {
		return nil, fmt.Errorf("launcher: %s: %w", OrganisationRealmFile, err)
	}
	if rep["realm"] != o.Realm {
		return nil, fmt.Errorf("launcher: %s: realm %v after expansion, want %s", OrganisationRealmFile, rep["realm"], o.Realm)
	}
	users, _ := rep["users"].([]any)
	for _, u := range o.Users {
		email := u.Email
		if email == "" {
			email = u.Username + "@" + o.Domain
		}
		users = append(users, map[string]any{
			"username": u.Username, "enabled": true, "email": email, "emailVerified": true,
			"firstName": u.Username, "lastName": o.Domain,
			"credentials": []any{map[string]any{"type": "password", "value": u.Password, "temporary": false}},
		})
	}
	rep["users"] = users
	return json.Marshal(rep)
}

// ImportOrganisation imports the organisation realm of o; delete it with
// DeleteRealm(o.Realm).
func (k *Keycloak) ImportOrganisation(ctx context.Context, o Organisation) error {
	data, err := OrganisationRealmJSON(o)
	if err != nil {
		return err
	}
	return k.ImportRealm(ctx, data)
}
