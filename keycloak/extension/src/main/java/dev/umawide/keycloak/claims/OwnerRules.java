package dev.umawide.keycloak.claims;

import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The owner's rules of one Incoming (issue 15), read from the resource's attributes, which the
 * Resource Server writes through the protection API (resource-server/internal/rules, the same
 * names, bounds and normalisation; testdata/entries.tsv is checked on both sides). Absent
 * attributes are the defaults: anyone verified, no lists, no quota.
 *
 * <p>A sender is admitted when no deny entry matches (deny wins), and the default is
 * {@code anyone}, or the default is {@code listed} and an allow entry matches; {@code nobody}
 * admits no one. An entry matches the sender's normalised address exactly, or names the
 * sender's domain exactly (not its subdomains).
 */
final class OwnerRules {

    enum Mode {
        ANYONE, LISTED, NOBODY
    }

    static final String ATTR_DEFAULT = "umawide.rules.default";
    static final String ATTR_ALLOW = "umawide.rules.allow";
    static final String ATTR_DENY = "umawide.rules.deny";
    static final String ATTR_MESSAGES_PER_DAY = "umawide.rules.messages_per_day";
    static final String ATTR_BYTES_PER_DAY = "umawide.rules.bytes_per_day";

    /** Response header of the token endpoint's 403 carrying a {@link Reason#toClient()} reason. */
    static final String REFUSAL_HEADER = "Umawide-Refusal";

    static final int MAX_ENTRIES = 200;
    static final long MAX_MESSAGES_PER_DAY = 1_000_000L;
    static final long MAX_BYTES_PER_DAY = 1L << 50;

    static final OwnerRules NONE = new OwnerRules(Mode.ANYONE, Set.of(), Set.of(), 0, 0);

    final Mode mode;
    final Set<String> allow;
    final Set<String> deny;
    /** 0: no limit. */
    final long messagesPerDay;
    /** 0: no limit. */
    final long bytesPerDay;

    OwnerRules(Mode mode, Set<String> allow, Set<String> deny, long messagesPerDay, long bytesPerDay) {
        this.mode = mode;
        this.allow = allow;
        this.deny = deny;
        this.messagesPerDay = messagesPerDay;
        this.bytesPerDay = bytesPerDay;
    }

    /** Why a sender is refused, for the log; null when admitted. */
    String refusal(EmailAddress sender) {
        if (matches(deny, sender)) {
            return "deny_list";
        }
        switch (mode) {
            case NOBODY:
                return "default_nobody";
            case LISTED:
                return matches(allow, sender) ? null : "not_listed";
            default:
                return null;
        }
    }

    boolean hasQuota() {
        return messagesPerDay > 0 || bytesPerDay > 0;
    }

    private static boolean matches(Set<String> entries, EmailAddress sender) {
        return entries.contains(sender.address()) || entries.contains(sender.domain());
    }

    /** The rules in a resource's attributes; invalid ones are {@link Reason#OWNER_RULES_INVALID} (fail closed). */
    static OwnerRules fromAttributes(Map<String, List<String>> attributes) throws Denied {
        if (attributes == null || attributes.isEmpty()) {
            return NONE;
        }
        Mode mode = Mode.ANYONE;
        List<String> d = attributes.get(ATTR_DEFAULT);
        if (d != null) {
            if (d.size() != 1 || d.get(0) == null) {
                throw new Denied(Reason.OWNER_RULES_INVALID, ATTR_DEFAULT);
            }
            switch (d.get(0)) {
                case "anyone":
                    mode = Mode.ANYONE;
                    break;
                case "listed":
                    mode = Mode.LISTED;
                    break;
                case "nobody":
                    mode = Mode.NOBODY;
                    break;
                default:
                    throw new Denied(Reason.OWNER_RULES_INVALID, ATTR_DEFAULT);
            }
        }
        return new OwnerRules(mode, entries(attributes, ATTR_ALLOW), entries(attributes, ATTR_DENY),
                number(attributes, ATTR_MESSAGES_PER_DAY, MAX_MESSAGES_PER_DAY), number(attributes, ATTR_BYTES_PER_DAY, MAX_BYTES_PER_DAY));
    }

    private static Set<String> entries(Map<String, List<String>> attributes, String name) throws Denied {
        List<String> values = attributes.get(name);
        if (values == null || values.isEmpty()) {
            return Set.of();
        }
        if (values.size() > MAX_ENTRIES) {
            throw new Denied(Reason.OWNER_RULES_INVALID, name + " has more than " + MAX_ENTRIES + " entries");
        }
        Set<String> out = new LinkedHashSet<>();
        for (String v : values) {
            String n = normalizeEntry(v);
            if (n == null) {
                throw new Denied(Reason.OWNER_RULES_INVALID, name);
            }
            out.add(n);
        }
        return Collections.unmodifiableSet(out);
    }

    private static long number(Map<String, List<String>> attributes, String name, long max) throws Denied {
        List<String> values = attributes.get(name);
        if (values == null || values.isEmpty()) {
            return 0;
        }
        String v = values.size() == 1 ? values.get(0) : null;
        if (v == null || !v.matches("0|[1-9][0-9]{0,15}")) {
            throw new Denied(Reason.OWNER_RULES_INVALID, name);
        }
        long n = Long.parseLong(v);
        if (n > max) {
            throw new Denied(Reason.OWNER_RULES_INVALID, name);
        }
        return n;
    }

    /**
     * One allow or deny entry as it is compared: surrounding spaces and tabs dropped, lower-cased,
     * then an address as {@link EmailAddress#parse} accepts it, or a domain as
     * {@link Domains#normalize} does. Null when invalid.
     */
    static String normalizeEntry(String raw) {
        if (raw == null) {
            return null;
        }
        int start = 0;
        int end = raw.length();
        while (start < end && (raw.charAt(start) == ' ' || raw.charAt(start) == '\t')) {
            start++;
        }
        while (end > start && (raw.charAt(end - 1) == ' ' || raw.charAt(end - 1) == '\t')) {
            end--;
        }
        String s = raw.substring(start, end).toLowerCase(Locale.ROOT);
        if (s.indexOf('@') >= 0) {
            EmailAddress a = EmailAddress.parse(s);
            return a == null ? null : a.address();
        }
        return Domains.normalize(s);
    }
}
