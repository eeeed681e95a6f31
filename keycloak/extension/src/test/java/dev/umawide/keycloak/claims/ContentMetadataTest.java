package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ContentMetadataTest {

    @Test
    void sha256() {
        assertTrue(ContentMetadata.valid("content_sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        assertFalse(ContentMetadata.valid("content_sha256", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
        assertFalse(ContentMetadata.valid("content_sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
        assertFalse(ContentMetadata.valid("content_sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555"));
        assertFalse(ContentMetadata.valid("content_sha256", "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        assertFalse(ContentMetadata.valid("content_sha256", "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "1", "1048576", "1099511627776"})
    void lengthAccepted(String v) {
        assertTrue(ContentMetadata.valid("content_length", v));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "-1", "+1", "01", "1.0", "1e6", " 1", "1099511627777", "99999999999999999999", "0x10", "١٢"})
    void lengthRefused(String v) {
        assertFalse(ContentMetadata.valid("content_length", v));
    }

    @ParameterizedTest
    @ValueSource(strings = {"text/plain", "application/pdf", "application/vnd.oasis.opendocument.text", "image/svg+xml",
            "text/plain; charset=utf-8", "text/plain;charset=\"utf-8\"", "multipart/mixed; boundary=abc; x=y"})
    void typeAccepted(String v) {
        assertTrue(ContentMetadata.valid("content_type", v));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "text", "text/", "/plain", "text/plain/x", "text plain", "text/plain;", "text/plain; charset",
            "text/plain\r\nX-Evil: 1", "text/plain; a=\"\u0001\"", "tëxt/plain", "text/plain; a=\"unterminated"})
    void typeRefused(String v) {
        assertFalse(ContentMetadata.valid("content_type", v));
    }

    @Test
    void typeBounded() {
        assertFalse(ContentMetadata.valid("content_type", "text/plain; a=" + "b".repeat(250)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"report.pdf", "Résumé 2024.docx", "a", "..hidden", "日本語.txt", "emoji 😀.png"})
    void fileNameAccepted(String v) {
        assertTrue(ContentMetadata.valid("file_name", v));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", ".", "..", "../etc/passwd", "a/b", "a\\b", "C:\\x", "a\u0000b", "line\nbreak", "tab\there", "del\u007f",
            "evil\u202egnp.exe", "iso\u2066x", "\ud800lone", "x\udc00", "c1\u0085"})
    void fileNameRefused(String v) {
        assertFalse(ContentMetadata.valid("file_name", v));
    }

    @Test
    void fileNameBounded() {
        assertTrue(ContentMetadata.valid("file_name", "n".repeat(255)));
        assertFalse(ContentMetadata.valid("file_name", "n".repeat(256)));
    }

    @Test
    void onlyMetadataKeys() {
        assertFalse(ContentMetadata.valid("claims_token", "x"));
        assertFalse(ContentMetadata.valid("sender_email", "a@b.c"));
        assertFalse(ContentMetadata.valid("file_name", null));
    }
}
