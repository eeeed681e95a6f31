package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Base64url, domains, email addresses, log sanitizing, reason codes. */
class SmallPartsTest {

    @Test
    void ticketDigestIsBase64UrlNoPadSha256() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad
        assertEquals("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0", Base64Url.ticketDigest("abc"));
        assertEquals(43, Base64Url.ticketDigest("x").length());
    }

    @Test
    void strictBase64Url() {
        assertArrayEquals("hi?".getBytes(StandardCharsets.US_ASCII), Base64Url.decodeNoPad("aGk_"));
        assertNull(Base64Url.decodeNoPad("aGk/"));
        assertNull(Base64Url.decodeNoPad("aGk="));
        assertNull(Base64Url.decodeNoPad("aGk "));
        assertNull(Base64Url.decodeNoPad("a+k_"), "the other alphabet");
        assertNull(Base64Url.decodeNoPad("a=k_"), "padding inside");
        assertNull(Base64Url.decodeNoPad("aGk\n"));
        assertNull(Base64Url.decodeNoPad("aGk\u00e9"));
        assertNull(Base64Url.decodeNoPad("aGk_\u0000"));
        assertNull(Base64Url.decodeNoPad("a"));
        assertArrayEquals(new byte[0], Base64Url.decodeNoPad(""));
    }

    @Test
    void lenientBase64UrlAcceptsPaddingOnly() {
        assertArrayEquals("hi".getBytes(StandardCharsets.US_ASCII), Base64Url.decodeLenient("aGk="));
        assertArrayEquals("hi".getBytes(StandardCharsets.US_ASCII), Base64Url.decodeLenient("aGk"));
        assertNull(Base64Url.decodeLenient("aGk==="));
        assertNull(Base64Url.decodeLenient("a+k="));
    }

    @Test
    void domains() {
        assertEquals("foo.example", Domains.normalize("FOO.Example"));
        assertEquals("xn--bcher-kva.example", Domains.normalize("xn--bcher-kva.example"));
        assertEquals("localhost", Domains.normalize("localhost"));
        assertNull(Domains.normalize(""));
        assertNull(Domains.normalize(null));
        assertNull(Domains.normalize("foo.example."));
        assertNull(Domains.normalize(".foo.example"));
        assertNull(Domains.normalize("foo..example"));
        assertNull(Domains.normalize("-foo.example"));
        assertNull(Domains.normalize("foo-.example"));
        assertNull(Domains.normalize("foo_bar.example"));
        assertNull(Domains.normalize("fö.example"));
        assertNull(Domains.normalize("a".repeat(64) + ".example"));
        assertNull(Domains.normalize(("a".repeat(60) + ".").repeat(5) + "example"));
        assertNull(Domains.normalize("127.0.0.1:8080"));
    }

    @Test
    void emailIsLowerCasedWithItsDomain() {
        EmailAddress e = EmailAddress.parse("Alice@FOO.example");
        assertEquals("alice@foo.example", e.address());
        assertEquals("foo.example", e.domain());
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "alice", "@foo.example", "alice@", "alice@@foo.example", "a@b@foo.example",
            "al ice@foo.example", "alice@foo example", "alice@foo.example.", "alice\u0000@foo.example", "alïce@foo.example",
            "alice@-foo.example", "\"a@b\"@foo.example"})
    void emailRefused(String raw) {
        assertNull(EmailAddress.parse(raw));
    }

    @Test
    void emailTooLong() {
        assertNull(EmailAddress.parse("a".repeat(65) + "@foo.example"));
        String domain = ("b".repeat(60) + ".").repeat(4) + "example";
        assertEquals(domain, Domains.normalize(domain));
        assertNull(EmailAddress.parse("aaaa@" + domain), "address over 254 characters");
        assertNull(EmailAddress.parse(null));
    }

    @Test
    void logSafe() {
        assertEquals("a?b", LogSafe.clip("a\nb"));
        assertEquals("??", LogSafe.clip("é\u0000"));
        assertEquals("x".repeat(128) + "...", LogSafe.clip("x".repeat(500)));
        assertNull(LogSafe.clip(null));
    }

    @Test
    void reasonCodes() {
        assertEquals("bad_signature", Reason.BAD_SIGNATURE.code());
        Denied d = new Denied(Reason.UNTRUSTED_ISSUER, "iss=https://evil\r\nforged");
        assertEquals(Reason.UNTRUSTED_ISSUER, d.reason());
        assertFalse(d.detail().contains("\n"));
        assertTrue(d.detail().startsWith("iss="));
        assertEquals(0, d.getStackTrace().length);
    }
}
