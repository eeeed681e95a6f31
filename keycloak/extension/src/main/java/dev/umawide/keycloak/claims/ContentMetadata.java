package dev.umawide.keycloak.claims;

import java.util.Set;
import java.util.regex.Pattern;

/**
 * The content metadata a client may push with the claims token (docs/PROTOCOL.md step 7). A key
 * is kept in the RPT only with exactly one well-formed value:
 * <ul>
 * <li>{@code content_sha256}: 64 lowercase hex digits;</li>
 * <li>{@code content_length}: decimal digits without leading zeros, at most {@link #MAX_CONTENT_LENGTH};</li>
 * <li>{@code content_type}: a MIME type {@code type/subtype} with optional {@code ;name=value}
 *     parameters, at most 255 characters;</li>
 * <li>{@code file_name}: 1 to 255 characters, no path separator, no control or bidi-control
 *     character, not {@code .} or {@code ..}.</li>
 * </ul>
 */
final class ContentMetadata {

    static final String CONTENT_SHA256 = "content_sha256";
    static final String CONTENT_LENGTH = "content_length";
    static final String CONTENT_TYPE = "content_type";
    static final String FILE_NAME = "file_name";
    static final Set<String> KEYS = Set.of(CONTENT_SHA256, CONTENT_LENGTH, CONTENT_TYPE, FILE_NAME);

    /** 1 TiB: any larger declared length is dropped as not sane. */
    static final long MAX_CONTENT_LENGTH = 1L << 40;
    static final int MAX_CONTENT_TYPE = 255;
    static final int MAX_FILE_NAME = 255;

    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final Pattern LENGTH = Pattern.compile("0|[1-9][0-9]{0,12}");
    private static final String NAME = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}";
    private static final String TOKEN = "[A-Za-z0-9!#$%&'*+.^_`|~-]+";
    private static final String QUOTED = "\"(?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\x20-\\x7e])*\"";
    private static final Pattern MIME = Pattern.compile(
            NAME + "/" + NAME + "(?:[ \\t]*;[ \\t]*" + TOKEN + "=(?:" + TOKEN + "|" + QUOTED + "))*");

    private ContentMetadata() {
    }

    static boolean isMetadataKey(String key) {
        return KEYS.contains(key);
    }

    /** Whether {@code value} is a well-formed value for metadata key {@code key}. */
    static boolean valid(String key, String value) {
        if (value == null) {
            return false;
        }
        switch (key) {
            case CONTENT_SHA256:
                return SHA256.matcher(value).matches();
            case CONTENT_LENGTH:
                return LENGTH.matcher(value).matches() && Long.parseLong(value) <= MAX_CONTENT_LENGTH;
            case CONTENT_TYPE:
                return value.length() <= MAX_CONTENT_TYPE && MIME.matcher(value).matches();
            case FILE_NAME:
                return validFileName(value);
            default:
                return false;
        }
    }

    private static boolean validFileName(String v) {
        if (v.isEmpty() || v.length() > MAX_FILE_NAME || v.equals(".") || v.equals("..")) {
            return false;
        }
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            if (Character.isHighSurrogate(c)) {
                if (i + 1 >= v.length() || !Character.isLowSurrogate(v.charAt(i + 1))) {
                    return false;
                }
                i++;
                continue;
            }
            if (Character.isLowSurrogate(c)) {
                return false;
            }
            if (c == '/' || c == '\\' || Character.getType(c) == Character.CONTROL || c == '\u2028' || c == '\u2029'
                    || (c >= '\u202a' && c <= '\u202e') || (c >= '\u2066' && c <= '\u2069') || c == '\u200e'
                    || c == '\u200f' || c == '\u061c' || c == '\ufeff') {
                return false;
            }
        }
        return true;
    }
}
