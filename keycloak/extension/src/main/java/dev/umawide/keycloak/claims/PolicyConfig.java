package dev.umawide.keycloak.claims;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.Collections;
import java.util.EnumSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * The claims-token policy's configuration, parsed from {@code Policy.getConfig()}
 * (a {@code Map<String,String>}; lists are JSON strings). Every key is optional except that
 * a policy with no trusted Claims Provider and discovery off denies everything.
 */
public final class PolicyConfig {

    public static final String CLAIMS_PROVIDERS = "claimsProviders";
    public static final String DISCOVERY_ENABLED = "discoveryEnabled";
    public static final String ALLOW_INSECURE_URLS = "allowInsecureUrls";
    public static final String ALLOW_PRIVATE_ADDRESSES = "allowPrivateAddresses";
    public static final String BLOCKED_DOMAINS = "blockedDomains";
    public static final String ALLOWED_ALGORITHMS = "allowedAlgorithms";
    public static final String MAX_TOKEN_LIFETIME_SECONDS = "maxTokenLifetimeSeconds";
    public static final String CLOCK_SKEW_SECONDS = "clockSkewSeconds";
    public static final String MAX_CLAIM_TOKEN_LENGTH = "maxClaimTokenLength";
    public static final String MAX_CLAIMS_TOKEN_LENGTH = "maxClaimsTokenLength";
    public static final String HTTP_TIMEOUT_MILLIS = "httpTimeoutMillis";
    public static final String HTTP_MAX_RESPONSE_BYTES = "httpMaxResponseBytes";
    public static final String JWKS_CACHE_SECONDS = "jwksCacheSeconds";
    public static final String JWKS_MIN_REFRESH_SECONDS = "jwksMinRefreshSeconds";
    public static final String DISCOVERY_CACHE_SECONDS = "discoveryCacheSeconds";

    /** Keys Keycloak's generic policy import reads from any policy's config; tolerated. */
    private static final Set<String> GENERIC_KEYS = Set.of("resources", "scopes", "applyPolicies");

    static final Set<JwsAlgorithm> DEFAULT_ALGORITHMS =
            Collections.unmodifiableSet(EnumSet.of(JwsAlgorithm.ES256, JwsAlgorithm.RS256, JwsAlgorithm.PS256, JwsAlgorithm.EdDSA));

    /** A numeric key: default and accepted range. */
    private record IntKey(String name, int def, int min, int max) {
    }

    private static final IntKey MAX_LIFETIME = new IntKey(MAX_TOKEN_LIFETIME_SECONDS, 300, 1, 3600);
    private static final IntKey SKEW = new IntKey(CLOCK_SKEW_SECONDS, 30, 0, 300);
    private static final IntKey MAX_CLAIM_TOKEN = new IntKey(MAX_CLAIM_TOKEN_LENGTH, 16384, 256, 65536);
    private static final IntKey MAX_CLAIMS_TOKEN = new IntKey(MAX_CLAIMS_TOKEN_LENGTH, 8192, 256, 32768);
    private static final IntKey TIMEOUT = new IntKey(HTTP_TIMEOUT_MILLIS, 3000, 100, 30000);
    private static final IntKey MAX_RESPONSE = new IntKey(HTTP_MAX_RESPONSE_BYTES, 65536, 1024, 1048576);
    private static final IntKey JWKS_TTL = new IntKey(JWKS_CACHE_SECONDS, 600, 10, 86400);
    private static final IntKey JWKS_REFRESH = new IntKey(JWKS_MIN_REFRESH_SECONDS, 10, 0, 3600);
    private static final IntKey DISCOVERY_TTL = new IntKey(DISCOVERY_CACHE_SECONDS, 3600, 10, 86400);

    private static final List<IntKey> INT_KEYS = List.of(MAX_LIFETIME, SKEW, MAX_CLAIM_TOKEN, MAX_CLAIMS_TOKEN,
            TIMEOUT, MAX_RESPONSE, JWKS_TTL, JWKS_REFRESH, DISCOVERY_TTL);

    private static final Set<String> KNOWN_KEYS;

    static {
        Set<String> known = new LinkedHashSet<>(List.of(CLAIMS_PROVIDERS, DISCOVERY_ENABLED, ALLOW_INSECURE_URLS,
                ALLOW_PRIVATE_ADDRESSES, BLOCKED_DOMAINS, ALLOWED_ALGORITHMS));
        for (IntKey k : INT_KEYS) {
            known.add(k.name());
        }
        KNOWN_KEYS = Collections.unmodifiableSet(known);
    }

    private final Map<String, ClaimsProviderEntry> providers;
    private final boolean discoveryEnabled;
    private final boolean allowInsecureUrls;
    private final boolean allowPrivateAddresses;
    private final Set<String> blockedDomains;
    private final Set<String> pinnedDomains;
    private final Set<JwsAlgorithm> algorithms;
    private final int maxTokenLifetimeSeconds;
    private final int clockSkewSeconds;
    private final int maxClaimTokenLength;
    private final int maxClaimsTokenLength;
    private final int httpTimeoutMillis;
    private final int httpMaxResponseBytes;
    private final int jwksCacheSeconds;
    private final int jwksMinRefreshSeconds;
    private final int discoveryCacheSeconds;

    private PolicyConfig(Map<String, String> raw, boolean strict) throws InvalidConfigException {
        Map<String, String> config = raw == null ? Map.of() : raw;
        if (strict) {
            for (String key : config.keySet()) {
                if (!KNOWN_KEYS.contains(key) && !GENERIC_KEYS.contains(key)) {
                    throw new InvalidConfigException("unknown config key '" + LogSafe.clip(key) + "'; known keys: " + KNOWN_KEYS);
                }
            }
        }
        this.allowInsecureUrls = bool(config, ALLOW_INSECURE_URLS, false);
        this.discoveryEnabled = bool(config, DISCOVERY_ENABLED, false);
        this.algorithms = algorithms(config.get(ALLOWED_ALGORITHMS));
        this.maxTokenLifetimeSeconds = integer(config, MAX_LIFETIME);
        this.clockSkewSeconds = integer(config, SKEW);
        this.maxClaimTokenLength = integer(config, MAX_CLAIM_TOKEN);
        this.maxClaimsTokenLength = integer(config, MAX_CLAIMS_TOKEN);
        this.httpTimeoutMillis = integer(config, TIMEOUT);
        this.httpMaxResponseBytes = integer(config, MAX_RESPONSE);
        this.jwksCacheSeconds = integer(config, JWKS_TTL);
        this.jwksMinRefreshSeconds = integer(config, JWKS_REFRESH);
        this.discoveryCacheSeconds = integer(config, DISCOVERY_TTL);
        this.allowPrivateAddresses = bool(config, ALLOW_PRIVATE_ADDRESSES, false);
        this.providers = providers(config.get(CLAIMS_PROVIDERS), allowInsecureUrls);
        Set<String> pinned = new LinkedHashSet<>();
        for (ClaimsProviderEntry e : providers.values()) {
            pinned.addAll(e.domains());
        }
        this.pinnedDomains = Collections.unmodifiableSet(pinned);
        this.blockedDomains = blockedDomains(config.get(BLOCKED_DOMAINS));
        for (String d : blockedDomains) {
            if (pinned.contains(d)) {
                throw new InvalidConfigException(BLOCKED_DOMAINS + ": '" + d + "' is also listed in " + CLAIMS_PROVIDERS + "; block or pin it, not both");
            }
        }
    }

    /**
     * Parses a policy config. Strict mode (used when an administrator creates, updates or
     * imports the policy) also refuses unknown keys, to catch typos; evaluation ignores them.
     */
    public static PolicyConfig parse(Map<String, String> config, boolean strict) throws InvalidConfigException {
        return new PolicyConfig(config, strict);
    }

    private static boolean bool(Map<String, String> config, String key, boolean def) throws InvalidConfigException {
        String v = config.get(key);
        if (v == null || v.isBlank()) {
            return def;
        }
        String t = v.trim().toLowerCase(Locale.ROOT);
        if (t.equals("true")) {
            return true;
        }
        if (t.equals("false")) {
            return false;
        }
        throw new InvalidConfigException(key + " must be true or false");
    }

    private static int integer(Map<String, String> config, IntKey key) throws InvalidConfigException {
        String v = config.get(key.name());
        if (v == null || v.isBlank()) {
            return key.def();
        }
        String t = v.trim();
        if (t.length() > 9 || !t.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new InvalidConfigException(key.name() + " must be a whole number from " + key.min() + " to " + key.max());
        }
        int n = Integer.parseInt(t);
        if (n < key.min() || n > key.max()) {
            throw new InvalidConfigException(key.name() + " must be a whole number from " + key.min() + " to " + key.max());
        }
        return n;
    }

    private static Set<JwsAlgorithm> algorithms(String json) throws InvalidConfigException {
        if (json == null || json.isBlank()) {
            return DEFAULT_ALGORITHMS;
        }
        JsonNode node;
        try {
            node = Json.tree(json);
        } catch (IOException e) {
            throw new InvalidConfigException(ALLOWED_ALGORITHMS + " must be a JSON array of strings");
        }
        if (!node.isArray() || node.isEmpty()) {
            throw new InvalidConfigException(ALLOWED_ALGORITHMS + " must be a non-empty JSON array of strings");
        }
        Set<JwsAlgorithm> algs = EnumSet.noneOf(JwsAlgorithm.class);
        for (JsonNode n : node) {
            if (!n.isTextual()) {
                throw new InvalidConfigException(ALLOWED_ALGORITHMS + " must be a JSON array of strings");
            }
            String name = n.textValue();
            JwsAlgorithm alg = JwsAlgorithm.byName(name);
            if (alg == null) {
                throw new InvalidConfigException(ALLOWED_ALGORITHMS + ": '" + LogSafe.clip(name)
                        + "' is not supported (never none or HMAC); supported: " + JwsAlgorithm.names());
            }
            algs.add(alg);
        }
        return Collections.unmodifiableSet(algs);
    }

    private static Map<String, ClaimsProviderEntry> providers(String json, boolean allowInsecure) throws InvalidConfigException {
        Map<String, ClaimsProviderEntry> out = new LinkedHashMap<>();
        if (json == null || json.isBlank()) {
            return Collections.unmodifiableMap(out);
        }
        JsonNode node;
        try {
            node = Json.tree(json);
        } catch (IOException e) {
            throw new InvalidConfigException(CLAIMS_PROVIDERS + " must be a JSON array of {issuer, jwks_uri, domains}");
        }
        if (!node.isArray()) {
            throw new InvalidConfigException(CLAIMS_PROVIDERS + " must be a JSON array of {issuer, jwks_uri, domains}");
        }
        int i = 0;
        for (JsonNode entry : node) {
            String where = CLAIMS_PROVIDERS + "[" + i++ + "]";
            if (!entry.isObject()) {
                throw new InvalidConfigException(where + " must be an object {issuer, jwks_uri, domains}");
            }
            for (Iterator<String> it = entry.fieldNames(); it.hasNext(); ) {
                String f = it.next();
                if (!Set.of("issuer", "jwks_uri", "domains").contains(f)) {
                    throw new InvalidConfigException(where + ": unknown field '" + LogSafe.clip(f) + "' (fields: issuer, jwks_uri, domains)");
                }
            }
            String issuer = Json.text(entry, "issuer");
            checkUrl(where + ".issuer", issuer, allowInsecure);
            String jwks = Json.text(entry, "jwks_uri");
            URI jwksUri = checkUrl(where + ".jwks_uri", jwks, allowInsecure);
            JsonNode domains = entry.get("domains");
            if (domains == null || !domains.isArray() || domains.isEmpty()) {
                throw new InvalidConfigException(where + ".domains must be a non-empty array of domain names");
            }
            Set<String> ds = new LinkedHashSet<>();
            for (JsonNode d : domains) {
                String norm = d.isTextual() ? Domains.normalize(d.textValue()) : null;
                if (norm == null) {
                    throw new InvalidConfigException(where + ".domains: '" + LogSafe.clip(d.asText()) + "' is not a domain name");
                }
                ds.add(norm);
            }
            if (out.containsKey(issuer)) {
                throw new InvalidConfigException(where + ": issuer listed twice");
            }
            out.put(issuer, new ClaimsProviderEntry(issuer, jwksUri, ds));
        }
        return Collections.unmodifiableMap(out);
    }

    /** A JSON array of domain names (lower-cased); at most 10000. */
    private static Set<String> blockedDomains(String json) throws InvalidConfigException {
        if (json == null || json.isBlank()) {
            return Set.of();
        }
        JsonNode node;
        try {
            node = Json.tree(json);
        } catch (IOException e) {
            throw new InvalidConfigException(BLOCKED_DOMAINS + " must be a JSON array of domain names");
        }
        if (!node.isArray() || node.size() > 10000) {
            throw new InvalidConfigException(BLOCKED_DOMAINS + " must be a JSON array of at most 10000 domain names");
        }
        Set<String> out = new LinkedHashSet<>();
        for (JsonNode d : node) {
            String norm = d.isTextual() ? Domains.normalize(d.textValue()) : null;
            if (norm == null) {
                throw new InvalidConfigException(BLOCKED_DOMAINS + ": '" + LogSafe.clip(d.asText()) + "' is not a domain name");
            }
            out.add(norm);
        }
        return Collections.unmodifiableSet(out);
    }

    /** An absolute http(s) URL without user info or fragment; plain http only when insecure URLs are allowed. */
    static URI checkUrl(String where, String value, boolean allowInsecure) throws InvalidConfigException {
        if (value == null || value.isEmpty() || value.length() > 2048) {
            throw new InvalidConfigException(where + " must be an absolute https URL");
        }
        URI uri;
        try {
            uri = new URI(value);
        } catch (URISyntaxException e) {
            throw new InvalidConfigException(where + " is not a valid URL");
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        if (!uri.isAbsolute() || uri.getHost() == null || uri.getRawUserInfo() != null || uri.getRawFragment() != null) {
            throw new InvalidConfigException(where + " must be an absolute https URL with a host, no user info and no fragment");
        }
        if (!scheme.equals("https") && !(allowInsecure && scheme.equals("http"))) {
            throw new InvalidConfigException(where + " must use https (http only with " + ALLOW_INSECURE_URLS + "=true)");
        }
        return uri;
    }

    /** The statically trusted Claims Providers by issuer. */
    public Map<String, ClaimsProviderEntry> providers() {
        return providers;
    }

    public boolean discoveryEnabled() {
        return discoveryEnabled;
    }

    public boolean allowInsecureUrls() {
        return allowInsecureUrls;
    }

    /** Fetches may reach private and loopback addresses (still https, certificate verified). */
    public boolean allowPrivateAddresses() {
        return allowPrivateAddresses;
    }

    /** Email domains refused whatever signs for them. */
    public Set<String> blockedDomains() {
        return blockedDomains;
    }

    /** Email domains of the static list: each is trusted only from its listed issuer(s), never by discovery. */
    public Set<String> pinnedDomains() {
        return pinnedDomains;
    }

    public Set<JwsAlgorithm> algorithms() {
        return algorithms;
    }

    public int maxTokenLifetimeSeconds() {
        return maxTokenLifetimeSeconds;
    }

    public int clockSkewSeconds() {
        return clockSkewSeconds;
    }

    public int maxClaimTokenLength() {
        return maxClaimTokenLength;
    }

    public int maxClaimsTokenLength() {
        return maxClaimsTokenLength;
    }

    public int httpTimeoutMillis() {
        return httpTimeoutMillis;
    }

    public int httpMaxResponseBytes() {
        return httpMaxResponseBytes;
    }

    public int jwksCacheSeconds() {
        return jwksCacheSeconds;
    }

    public int jwksMinRefreshSeconds() {
        return jwksMinRefreshSeconds;
    }

    public int discoveryCacheSeconds() {
        return discoveryCacheSeconds;
    }
}
