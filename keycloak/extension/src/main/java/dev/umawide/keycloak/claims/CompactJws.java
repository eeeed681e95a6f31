package dev.umawide.keycloak.claims;

import java.io.IOException;
import java.nio.charset.StandardCharsets;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A compact JWS split and decoded, not yet verified: header and payload must be JSON objects,
 * the three parts unpadded BASE64URL. A {@code crit} header is refused (no extension is understood).
 */
record CompactJws(String alg, String kid, ObjectNode header, ObjectNode payload, byte[] signingInput, byte[] signature) {

    static CompactJws parse(String jws, int maxLength) throws Denied {
        if (jws == null || jws.isEmpty()) {
            throw new Denied(Reason.NO_CLAIMS_TOKEN);
        }
        if (jws.length() > maxLength) {
            throw new Denied(Reason.CLAIMS_TOKEN_TOO_LARGE);
        }
        int dot1 = jws.indexOf('.');
        int dot2 = dot1 < 0 ? -1 : jws.indexOf('.', dot1 + 1);
        if (dot1 <= 0 || dot2 < 0 || jws.indexOf('.', dot2 + 1) >= 0 || dot2 == dot1 + 1) {
            throw new Denied(Reason.JWS_MALFORMED, "not three parts");
        }
        byte[] headerBytes = Base64Url.decodeNoPad(jws.substring(0, dot1));
        byte[] payloadBytes = Base64Url.decodeNoPad(jws.substring(dot1 + 1, dot2));
        byte[] signature = Base64Url.decodeNoPad(jws.substring(dot2 + 1));
        if (headerBytes == null || payloadBytes == null || signature == null) {
            throw new Denied(Reason.JWS_MALFORMED, "not base64url");
        }
        ObjectNode header;
        ObjectNode payload;
        try {
            header = Json.object(headerBytes);
            payload = Json.object(payloadBytes);
        } catch (IOException | RuntimeException e) {
            throw new Denied(Reason.JWS_MALFORMED, "not JSON objects");
        }
        JsonNode alg = header.get("alg");
        if (alg == null || !alg.isTextual()) {
            throw new Denied(Reason.JWS_MALFORMED, "no alg");
        }
        if (header.has("crit")) {
            throw new Denied(Reason.JWS_MALFORMED, "crit header");
        }
        JsonNode kid = header.get("kid");
        String kidText = kid != null && kid.isTextual() ? kid.textValue() : null;
        byte[] signingInput = jws.substring(0, dot2).getBytes(StandardCharsets.US_ASCII);
        return new CompactJws(alg.textValue(), kidText, header, payload, signingInput, signature);
    }
}
