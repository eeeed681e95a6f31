package dev.umawide.keycloak.claims;

import java.io.IOException;
import java.net.URI;
import java.util.HashMap;
import java.util.Map;

/** Serves canned documents by URL and counts fetches. */
final class FakeFetcher implements HttpFetcher {
    final Map<URI, byte[]> documents = new HashMap<>();
    final Map<URI, Integer> fetches = new HashMap<>();

    FakeFetcher put(String uri, byte[] body) {
        documents.put(URI.create(uri), body);
        return this;
    }

    int count(String uri) {
        return fetches.getOrDefault(URI.create(uri), 0);
    }

    @Override
    public byte[] get(URI uri) throws IOException {
        fetches.merge(uri, 1, Integer::sum);
        byte[] b = documents.get(uri);
        if (b == null) {
            throw new IOException("404");
        }
        return b;
    }
}
