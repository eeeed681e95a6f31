package dev.umawide.keycloak.claims;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The {@code claim_token} form field as docs/PROTOCOL.md step 7 sends it: BASE64URL of a JSON
 * object whose every value is an array of strings, one of which is {@code claims_token}.
 */
record PushedClaims(Map<String, List<String>> claims) {

    static final String CLAIMS_TOKEN = "claims_token";
    /** At most this many keys in the pushed claims object. */
    static final int MAX_KEYS = 32;

    /** Length-checks, decodes and strictly parses the claim_token form field. */
    static PushedClaims decode(String claimToken, int maxLength) throws Denied {
        if (claimToken == null || claimToken.isEmpty()) {
            throw new Denied(Reason.NO_CLAIM_TOKEN);
        }
        if (claimToken.length() > maxLength) {
            throw new Denied(Reason.CLAIM_TOKEN_TOO_LARGE);
        }
        byte[] json = Base64Url.decodeLenient(claimToken);
        if (json == null) {
            throw new Denied(Reason.CLAIM_TOKEN_MALFORMED, "not base64url");
        }
        ObjectNode object;
        try {
            object = Json.object(json);
        } catch (IOException | RuntimeException e) {
            throw new Denied(Reason.CLAIM_TOKEN_MALFORMED, "not a JSON object");
        }
        if (object.size() > MAX_KEYS) {
            throw new Denied(Reason.CLAIM_TOKEN_MALFORMED, "too many keys");
        }
        Map<String, List<String>> claims = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = object.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            JsonNode v = e.getValue();
            if (!v.isArray()) {
                throw new Denied(Reason.CLAIM_TOKEN_MALFORMED, "value not an array");
            }
            List<String> values = new ArrayList<>(v.size());
            for (JsonNode s : v) {
                if (!s.isTextual()) {
                    throw new Denied(Reason.CLAIM_TOKEN_MALFORMED, "value not a string");
                }
                values.add(s.textValue());
            }
            claims.put(e.getKey(), Collections.unmodifiableList(values));
        }
        return new PushedClaims(Collections.unmodifiableMap(claims));
    }

    /** The one claims token; denies when absent or when several are pushed. */
    String claimsToken() throws Denied {
        List<String> v = claims.get(CLAIMS_TOKEN);
        if (v == null || v.size() != 1 || v.get(0).isEmpty()) {
            throw new Denied(Reason.NO_CLAIMS_TOKEN);
        }
        return v.get(0);
    }
}
