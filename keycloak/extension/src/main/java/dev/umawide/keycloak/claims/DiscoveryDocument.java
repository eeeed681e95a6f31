package dev.umawide.keycloak.claims;

import java.io.IOException;
import java.net.URI;
import java.util.LinkedHashSet;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A Claims Provider discovery document, {@code https://{domain}/.well-known/uma-wide-ecosystem-claims-provider}:
 * {@code {"issuer", "claims_endpoint", "jwks_uri", "domains": [...], "signing_alg_values_supported": [...]}}.
 * Only {@code issuer}, {@code jwks_uri} and {@code domains} matter to the policy.
 */
record DiscoveryDocument(String issuer, URI jwksUri, Set<String> domains) {

    static final String WELL_KNOWN_PATH = "/.well-known/uma-wide-ecosystem-claims-provider";

    DiscoveryDocument {
        domains = Set.copyOf(domains);
    }

    static URI urlFor(String domain) {
        return URI.create("https://" + domain + WELL_KNOWN_PATH);
    }

    static DiscoveryDocument parse(byte[] json, boolean allowInsecure) throws IOException {
        ObjectNode doc = Json.object(json);
        String issuer = Json.text(doc, "issuer");
        String jwks = Json.text(doc, "jwks_uri");
        URI jwksUri;
        try {
            PolicyConfig.checkUrl("issuer", issuer, allowInsecure);
            jwksUri = PolicyConfig.checkUrl("jwks_uri", jwks, allowInsecure);
        } catch (InvalidConfigException e) {
            throw new IOException(e.getMessage());
        }
        JsonNode ds = doc.get("domains");
        if (ds == null || !ds.isArray() || ds.isEmpty() || ds.size() > 1000) {
            throw new IOException("domains must be a non-empty array");
        }
        Set<String> domains = new LinkedHashSet<>();
        for (JsonNode d : ds) {
            String norm = d.isTextual() ? Domains.normalize(d.textValue()) : null;
            if (norm != null) {
                domains.add(norm);
            }
        }
        return new DiscoveryDocument(issuer, jwksUri, domains);
    }
}
