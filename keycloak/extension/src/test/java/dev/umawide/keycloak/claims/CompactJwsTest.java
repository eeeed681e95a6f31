package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class CompactJwsTest {

    private static String p(String json) {
        return Base64Url.encodeNoPad(json.getBytes(StandardCharsets.UTF_8));
    }

    private static Reason reason(String jws) {
        return assertThrows(Denied.class, () -> CompactJws.parse(jws, 500)).reason();
    }

    @Test
    void parses() throws Exception {
        String h = p("{\"alg\":\"ES256\",\"kid\":\"k1\"}");
        String b = p("{\"iss\":\"x\"}");
        CompactJws j = CompactJws.parse(h + "." + b + ".AQID", 500);
        assertEquals("ES256", j.alg());
        assertEquals("k1", j.kid());
        assertEquals("x", j.payload().get("iss").textValue());
        assertArrayEquals((h + "." + b).getBytes(StandardCharsets.US_ASCII), j.signingInput());
        assertArrayEquals(new byte[] {1, 2, 3}, j.signature());
    }

    @Test
    void kidOptionalAtThisLevelAndMustBeAString() throws Exception {
        assertNull(CompactJws.parse(p("{\"alg\":\"ES256\"}") + "." + p("{}") + ".AQID", 500).kid());
        assertNull(CompactJws.parse(p("{\"alg\":\"ES256\",\"kid\":7}") + "." + p("{}") + ".AQID", 500).kid());
    }

    @Test
    void emptyAndOversize() {
        assertEquals(Reason.NO_CLAIMS_TOKEN, reason(""));
        assertEquals(Reason.NO_CLAIMS_TOKEN, reason(null));
        assertEquals(Reason.CLAIMS_TOKEN_TOO_LARGE, reason("a".repeat(501)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"abc", "a.b", "a.b.c.d", ".e30.AQID", "e30..AQID", "e30.e30.AQ==", "e30.e30.AQ+D", "e30.e30.AQID.",
            "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.AQID"})
    void malformed(String jws) {
        assertEquals(Reason.JWS_MALFORMED, reason(jws));
    }

    @Test
    void headerRules() {
        String body = p("{}");
        assertEquals(Reason.JWS_MALFORMED, reason(p("{}") + "." + body + ".AQID"));
        assertEquals(Reason.JWS_MALFORMED, reason(p("{\"alg\":1}") + "." + body + ".AQID"));
        assertEquals(Reason.JWS_MALFORMED, reason(p("[\"alg\"]") + "." + body + ".AQID"));
        assertEquals(Reason.JWS_MALFORMED, reason(p("{\"alg\":\"ES256\",\"crit\":[\"exp\"]}") + "." + body + ".AQID"));
        assertEquals(Reason.JWS_MALFORMED, reason(p("{\"alg\":\"ES256\",\"alg\":\"none\"}") + "." + body + ".AQID"));
        assertEquals(Reason.JWS_MALFORMED, reason(p("{\"alg\":\"ES256\"}") + "." + p("[1]") + ".AQID"));
    }

    @Test
    void unsignedTokenParsesButHasNoSignature() throws Exception {
        CompactJws j = CompactJws.parse(TestKeys.part(Map.of("alg", "none")) + "." + TestKeys.part(Map.of()) + ".", 500);
        assertEquals("none", j.alg());
        assertEquals(0, j.signature().length);
    }
}
