#!/usr/bin/env bash
# Adds what umawide needs to two EXISTING realms of a running Keycloak 26.5.6
# that loads the umawide extension (keycloak/extension), with kcadm.sh, the
# admin CLI shipped with Keycloak (bin/kcadm.sh). docs/DEPLOYMENT.md
# ("Adopting umawide next to an existing Keycloak") explains each object;
# deploy/adopt/adopt_test.go runs this script against a real Keycloak and
# pushes a message through the result.
#
#   AUTHN_REALM   the senders' realm (Alice's, "foo" in the demo): gets the
#                 client scope claims-provider, the clients claims-provider
#                 and rqp-client
#   AUTHZ_REALM   the owners' realm (Bob's, "bar"): gets the clients
#                 resource-server (authorization services, the claims-token
#                 policy), rqp-client and incoming-app
#
# Environment (all required unless a default is shown):
#   KEYCLOAK_URL                 e.g. https://id.example.com
#   KEYCLOAK_ADMIN_USER, KEYCLOAK_ADMIN_PASSWORD
#                                an admin of the master realm (or set
#                                KCADM_CONFIG to an already logged-in config)
#   AUTHN_REALM, AUTHZ_REALM
#   CLAIMS_PROVIDER_ISSUER       the Claims Provider's public URL (its -issuer)
#   CLAIMS_PROVIDER_DOMAINS      the email domains it vouches for, comma-separated
#   CLAIMS_PROVIDER_SECRET       client secret of claims-provider (AUTHN_REALM)
#   RQP_CLIENT_AUTHN_SECRET      client secret of rqp-client (AUTHN_REALM)
#   RQP_CLIENT_AS_SECRET         client secret of rqp-client (AUTHZ_REALM)
#   RESOURCE_SERVER_SECRET       client secret of resource-server (AUTHZ_REALM)
#   ALLOW_INSECURE_URLS          default false; true only for http or private
#                                addresses of a development Claims Provider
#   KCADM                        default kcadm.sh (on PATH)
#   KCADM_CONFIG                 default a private temporary file
#
# It refuses to run when one of the clients or the client scope exists
# already in its realm (it never changes existing objects).
set -euo pipefail

need() { [ -n "${!1:-}" ] || { echo "add-umawide: set $1" >&2; exit 2; }; }
for v in KEYCLOAK_URL AUTHN_REALM AUTHZ_REALM CLAIMS_PROVIDER_ISSUER CLAIMS_PROVIDER_DOMAINS \
  CLAIMS_PROVIDER_SECRET RQP_CLIENT_AUTHN_SECRET RQP_CLIENT_AS_SECRET RESOURCE_SERVER_SECRET; do
  need "$v"
done
KCADM=${KCADM:-kcadm.sh}
ALLOW_INSECURE_URLS=${ALLOW_INSECURE_URLS:-false}
case "$ALLOW_INSECURE_URLS" in true | false) ;; *) echo "add-umawide: ALLOW_INSECURE_URLS is true or false" >&2; exit 2 ;; esac
CLAIMS_PROVIDER_ISSUER=${CLAIMS_PROVIDER_ISSUER%/}

if [ -z "${KCADM_CONFIG:-}" ]; then
  KCADM_CONFIG=$(mktemp)
  trap 'rm -f "$KCADM_CONFIG"' EXIT
  need KEYCLOAK_ADMIN_USER
  need KEYCLOAK_ADMIN_PASSWORD
  "$KCADM" config credentials --config "$KCADM_CONFIG" --server "$KEYCLOAK_URL" --realm master \
    --user "$KEYCLOAK_ADMIN_USER" --password "$KEYCLOAK_ADMIN_PASSWORD" >/dev/null
fi
kc() { "$KCADM" "$@" --config "$KCADM_CONFIG"; }

# JSON string literal of $1 (no jq needed).
json() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

clients() { kc get clients -r "$1" --fields clientId --format csv --noquotes; }
existing_authn=$(clients "$AUTHN_REALM")
existing_authz=$(clients "$AUTHZ_REALM")
for c in claims-provider rqp-client; do
  if grep -qx "$c" <<<"$existing_authn"; then
    echo "add-umawide: realm $AUTHN_REALM has a client $c already: nothing changed" >&2
    exit 1
  fi
done
for c in resource-server rqp-client incoming-app; do
  if grep -qx "$c" <<<"$existing_authz"; then
    echo "add-umawide: realm $AUTHZ_REALM has a client $c already: nothing changed" >&2
    exit 1
  fi
done
if kc get client-scopes -r "$AUTHN_REALM" --fields name --format csv --noquotes | grep -qx claims-provider; then
  echo "add-umawide: realm $AUTHN_REALM has a client scope claims-provider already: nothing changed" >&2
  exit 1
fi

# The loopback redirects of RFC 8252 (any port) for clients run on a
# person's machine: rqp-client --login and rqp-client inbox.
LOOPBACK='["http://127.0.0.1/*", "http://localhost/*", "http://[::1]/*"]'

echo "== realm $AUTHN_REALM (senders): client scope claims-provider"
# An optional scope whose audience mapper puts claims-provider into the
# access token's aud: only a token asked for with scope=claims-provider can
# be shown to the Claims Provider.
scope=$(kc create client-scopes -r "$AUTHN_REALM" -i -f - <<EOF
{
  "name": "claims-provider",
  "description": "Puts the Claims Provider into the access token's audience (scope=claims-provider)",
  "protocol": "openid-connect",
  "attributes": {"include.in.token.scope": "true", "display.on.consent.screen": "false"},
  "protocolMappers": [{
    "name": "claims-provider audience",
    "protocol": "openid-connect",
    "protocolMapper": "oidc-audience-mapper",
    "config": {"included.client.audience": "claims-provider", "id.token.claim": "false",
               "access.token.claim": "true", "introspection.token.claim": "true"}
  }]
}
EOF
)

echo "== realm $AUTHN_REALM: client claims-provider (service account: query-users, view-users)"
kc create clients -r "$AUTHN_REALM" -i -f - >/dev/null <<EOF
{
  "clientId": "claims-provider",
  "name": "Claims Provider",
  "publicClient": false,
  "clientAuthenticatorType": "client-secret",
  "secret": $(json "$CLAIMS_PROVIDER_SECRET"),
  "standardFlowEnabled": false,
  "directAccessGrantsEnabled": false,
  "serviceAccountsEnabled": true
}
EOF
kc add-roles -r "$AUTHN_REALM" --uusername service-account-claims-provider \
  --cclientid realm-management --rolename query-users --rolename view-users

echo "== realm $AUTHN_REALM: client rqp-client (code + PKCE on loopback, service account, optional scope claims-provider)"
rqp=$(kc create clients -r "$AUTHN_REALM" -i -f - <<EOF
{
  "clientId": "rqp-client",
  "name": "RqP client (sender's side)",
  "publicClient": false,
  "clientAuthenticatorType": "client-secret",
  "secret": $(json "$RQP_CLIENT_AUTHN_SECRET"),
  "standardFlowEnabled": true,
  "directAccessGrantsEnabled": false,
  "serviceAccountsEnabled": true,
  "redirectUris": $LOOPBACK,
  "attributes": {"pkce.code.challenge.method": "S256"}
}
EOF
)
kc update "clients/$rqp/optional-client-scopes/$scope" -r "$AUTHN_REALM"

echo "== realm $AUTHZ_REALM (owners): client resource-server (authorization services, claims-token policy)"
domains=""
IFS=',' read -ra list <<<"$CLAIMS_PROVIDER_DOMAINS"
for d in "${list[@]}"; do
  d=$(echo "$d" | tr -d '[:space:]' | tr '[:upper:]' '[:lower:]')
  [ -n "$d" ] && domains+="${domains:+,}\\\"$d\\\""
done
providers="[{\\\"issuer\\\":\\\"$CLAIMS_PROVIDER_ISSUER\\\",\\\"jwks_uri\\\":\\\"$CLAIMS_PROVIDER_ISSUER/jwks\\\",\\\"domains\\\":[$domains]}]"
# The authorization settings come with the client, as a realm import would
# bring them: the scope create, the claims-token policy and the scope
# permission that applies it to create (no resources listed: it covers
# every owner's Incoming, which the Resource Server registers on first use).
kc create clients -r "$AUTHZ_REALM" -i -f - >/dev/null <<EOF
{
  "clientId": "resource-server",
  "name": "Resource Server (Incoming)",
  "publicClient": false,
  "clientAuthenticatorType": "client-secret",
  "secret": $(json "$RESOURCE_SERVER_SECRET"),
  "standardFlowEnabled": false,
  "directAccessGrantsEnabled": false,
  "serviceAccountsEnabled": true,
  "authorizationServicesEnabled": true,
  "authorizationSettings": {
    "allowRemoteResourceManagement": true,
    "policyEnforcementMode": "ENFORCING",
    "decisionStrategy": "UNANIMOUS",
    "resources": [],
    "scopes": [{"name": "create", "displayName": "Create a message in an Incoming"}],
    "policies": [
      {"name": "claims token", "type": "claims-token", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
       "description": "Claims token signed by a trusted Claims Provider, bound to the ticket",
       "config": {"claimsProviders": "$providers", "allowInsecureUrls": "$ALLOW_INSECURE_URLS"}},
      {"name": "create in Incoming", "type": "scope", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
       "config": {"scopes": "[\"create\"]", "applyPolicies": "[\"claims token\"]"}}
    ]
  }
}
EOF
# (Given with the client, the authorization settings replace Keycloak's
# defaults for a new authorization client: no "Default Policy" that would
# grant everything, no "Default Resource".)
# The Resource Server's service account: the protection API (uma_protection,
# given by Keycloak when authorization services are enabled, added here if
# not) and reading users (an owner who is no user of the realm gets 404).
kc add-roles -r "$AUTHZ_REALM" --uusername service-account-resource-server --cclientid resource-server --rolename uma_protection
kc add-roles -r "$AUTHZ_REALM" --uusername service-account-resource-server \
  --cclientid realm-management --rolename view-users --rolename query-users

echo "== realm $AUTHZ_REALM: client rqp-client (the RqP client's registration: uma-ticket grant)"
kc create clients -r "$AUTHZ_REALM" -i -f - >/dev/null <<EOF
{
  "clientId": "rqp-client",
  "name": "RqP client (registration at the owners' AS)",
  "publicClient": false,
  "clientAuthenticatorType": "client-secret",
  "secret": $(json "$RQP_CLIENT_AS_SECRET"),
  "standardFlowEnabled": false,
  "directAccessGrantsEnabled": false,
  "serviceAccountsEnabled": true
}
EOF

echo "== realm $AUTHZ_REALM: client incoming-app (owners read their Incoming: public, code + PKCE on loopback)"
kc create clients -r "$AUTHZ_REALM" -i -f - >/dev/null <<EOF
{
  "clientId": "incoming-app",
  "name": "Incoming (owners read their messages)",
  "publicClient": true,
  "standardFlowEnabled": true,
  "directAccessGrantsEnabled": false,
  "serviceAccountsEnabled": false,
  "redirectUris": $LOOPBACK,
  "attributes": {"pkce.code.challenge.method": "S256"}
}
EOF

echo "== done: realm $AUTHN_REALM issues tokens for the Claims Provider; realm $AUTHZ_REALM trusts $CLAIMS_PROVIDER_ISSUER for ${CLAIMS_PROVIDER_DOMAINS}"
