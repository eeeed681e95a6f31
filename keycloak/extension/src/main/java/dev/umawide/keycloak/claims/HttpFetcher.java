package dev.umawide.keycloak.claims;

import java.io.IOException;
import java.net.URI;

/** GETs a small JSON document (JWKS, discovery). Implementations bound time and size. */
interface HttpFetcher {
    byte[] get(URI uri) throws IOException;
}
