#!/bin/sh
# Prepares an existing Keycloak realm for the Claims Provider through the
# admin REST API (curl and jq): the Claims Provider's own client with a
# service account that may query and view users, a client scope that puts the
# Claims Provider into access tokens' aud, offered to the clients that call it.
# The integration tests run this script against a real Keycloak.
#
#   KC_URL=https://keycloak.foo.example KC_REALM=foo KC_ADMIN_PASSWORD=... \
#   CALLER_CLIENTS="rqp-client" SECRET_FILE=/etc/claims-provider/secret \
#   sh claims-provider/keycloak-setup.sh
#
# Environment:
#   KC_URL             Keycloak base URL (required)
#   KC_REALM           the realm whose users the Claims Provider speaks about (required)
#   KC_ADMIN_USER      admin of the master realm (default admin)
#   KC_ADMIN_PASSWORD  its password (required)
#   CP_CLIENT_ID       the Claims Provider's client id (default claims-provider)
#   CALLER_CLIENTS     space-separated client ids that call the Claims Provider
#   SECRET_FILE        where the client secret is written, mode 0600 (default ./claims-provider-secret)
set -eu

: "${KC_URL:?KC_URL is required}" "${KC_REALM:?KC_REALM is required}" "${KC_ADMIN_PASSWORD:?KC_ADMIN_PASSWORD is required}"
KC_ADMIN_USER=${KC_ADMIN_USER:-admin}
CP_CLIENT_ID=${CP_CLIENT_ID:-claims-provider}
CALLER_CLIENTS=${CALLER_CLIENTS:-}
SECRET_FILE=${SECRET_FILE:-./claims-provider-secret}
ADMIN="$KC_URL/admin/realms/$KC_REALM"

TOKEN=$(curl -fsS "$KC_URL/realms/master/protocol/openid-connect/token" \
  -d grant_type=password -d client_id=admin-cli \
  --data-urlencode "username=$KC_ADMIN_USER" --data-urlencode "password=$KC_ADMIN_PASSWORD" | jq -r .access_token)

# api METHOD PATH [curl args]: one admin REST call, failing on any error status.
api() {
  method=$1 path=$2
  shift 2
  curl -fsS -X "$method" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" "$@" "$ADMIN$path"
}
client_uuid() { api GET "/clients?clientId=$1" | jq -er '.[0].id'; }

# 1. The Claims Provider's client: confidential, service account only.
api POST /clients -d "$(jq -n --arg id "$CP_CLIENT_ID" '{
  clientId: $id, name: "Claims Provider", protocol: "openid-connect", enabled: true,
  publicClient: false, clientAuthenticatorType: "client-secret",
  serviceAccountsEnabled: true, standardFlowEnabled: false,
  implicitFlowEnabled: false, directAccessGrantsEnabled: false
}')"
CP_UUID=$(client_uuid "$CP_CLIENT_ID")

# 2. Its service account may query and view users, nothing else.
SA_ID=$(api GET "/clients/$CP_UUID/service-account-user" | jq -er .id)
RM_UUID=$(client_uuid realm-management)
ROLES=$({ api GET "/clients/$RM_UUID/roles/query-users"; api GET "/clients/$RM_UUID/roles/view-users"; } | jq -s '[.[] | {id, name}]')
api POST "/users/$SA_ID/role-mappings/clients/$RM_UUID" -d "$ROLES"

# 3. A client scope that puts the Claims Provider into aud (request scope=claims-provider).
api POST /client-scopes -d "$(jq -n --arg aud "$CP_CLIENT_ID" '{
  name: "claims-provider", protocol: "openid-connect",
  description: "Puts the Claims Provider into the access token audience",
  attributes: {"include.in.token.scope": "true", "display.on.consent.screen": "false"},
  protocolMappers: [{
    name: "claims-provider audience", protocol: "openid-connect", protocolMapper: "oidc-audience-mapper",
    config: {"included.client.audience": $aud, "access.token.claim": "true",
             "id.token.claim": "false", "introspection.token.claim": "true"}
  }]
}')"
SCOPE_ID=$(api GET /client-scopes | jq -er '.[] | select(.name == "claims-provider") | .id')

# 4. Offer the scope to the clients that call the Claims Provider.
for c in $CALLER_CLIENTS; do
  api PUT "/clients/$(client_uuid "$c")/optional-client-scopes/$SCOPE_ID"
done

# 5. The client secret, for -client-secret-file.
umask 077
api GET "/clients/$CP_UUID/client-secret" | jq -er .value >"$SECRET_FILE"
echo "claims-provider client ready in realm $KC_REALM; secret written to $SECRET_FILE" >&2
