package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class PushedClaimsTest {

    static String enc(String json) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(json.getBytes(StandardCharsets.UTF_8));
    }

    private static Reason reason(String claimToken) {
        return assertThrows(Denied.class, () -> PushedClaims.decode(claimToken, 1000).claimsToken()).reason();
    }

    @Test
    void decodesObjectOfStringArrays() throws Exception {
        PushedClaims p = PushedClaims.decode(enc("{\"claims_token\":[\"a.b.c\"],\"content_type\":[\"text/plain\"],\"x\":[]}"), 1000);
        assertEquals("a.b.c", p.claimsToken());
        assertEquals(List.of("text/plain"), p.claims().get("content_type"));
        assertEquals(List.of(), p.claims().get("x"));
    }

    @Test
    void paddedBase64UrlAccepted() throws Exception {
        String padded = Base64.getUrlEncoder().encodeToString("{\"claims_token\":[\"t\"]}".getBytes(StandardCharsets.UTF_8));
        assertEquals("t", PushedClaims.decode(padded, 1000).claimsToken());
    }

    @Test
    void missingOrEmpty() {
        assertEquals(Reason.NO_CLAIM_TOKEN, reason(null));
        assertEquals(Reason.NO_CLAIM_TOKEN, reason(""));
    }

    @Test
    void oversizeRefusedBeforeParsing() {
        // Not even base64url: the length check must come first.
        assertEquals(Reason.CLAIM_TOKEN_TOO_LARGE, reason("!".repeat(1001)));
        assertEquals(Reason.CLAIM_TOKEN_TOO_LARGE, reason(enc("{\"claims_token\":[\"" + "a".repeat(1000) + "\"]}")));
    }

    @ParameterizedTest
    @ValueSource(strings = {"eyJ.not-base64!", "a", "e30+", "eyJjbGFpbXNfdG9rZW4iOlsiYSJdfQ==="})
    void notBase64Url(String raw) {
        assertEquals(Reason.CLAIM_TOKEN_MALFORMED, reason(raw));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "not json",
        "[\"claims_token\"]",
        "\"claims_token\"",
        "{\"claims_token\":\"a.b.c\"}",
        "{\"claims_token\":[1]}",
        "{\"claims_token\":[[\"a\"]]}",
        "{\"claims_token\":[null]}",
        "{\"claims_token\":[\"a\"],\"claims_token\":[\"b\"]}",
        "{\"claims_token\":[\"a\"]} {}",
        "{\"claims_token\":[\"a\"],\"n\":{\"k\":[\"v\"]}}"
    })
    void notObjectOfStringArrays(String json) {
        assertEquals(Reason.CLAIM_TOKEN_MALFORMED, reason(enc(json)));
    }

    @Test
    void tooManyKeys() {
        StringBuilder b = new StringBuilder("{\"claims_token\":[\"a\"]");
        for (int i = 0; i < 32; i++) {
            b.append(",\"k").append(i).append("\":[\"v\"]");
        }
        b.append('}');
        Reason r = assertThrows(Denied.class, () -> PushedClaims.decode(enc(b.toString()), 10000)).reason();
        assertEquals(Reason.CLAIM_TOKEN_MALFORMED, r);
    }

    @ParameterizedTest
    @ValueSource(strings = {"{}", "{\"claims_token\":[]}", "{\"claims_token\":[\"a\",\"b\"]}", "{\"claims_token\":[\"\"]}",
            "{\"claim_token\":[\"a\"]}"})
    void noSingleClaimsToken(String json) {
        assertEquals(Reason.NO_CLAIMS_TOKEN, reason(enc(json)));
    }
}
