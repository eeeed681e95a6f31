package dev.umawide.keycloak.claims;

import java.util.Map;

import jakarta.ws.rs.core.NewCookie;

import org.keycloak.http.HttpResponse;

/**
 * The token endpoint's response as the policy sees it, recording headers. A class, not a
 * {@link Stubs} proxy: a proxy initialises {@link NewCookie}, which needs a JAX-RS runtime.
 */
final class RecordingResponse implements HttpResponse {
    private final Map<String, String> headers;

    RecordingResponse(Map<String, String> headers) {
        this.headers = headers;
    }

    @Override
    public int getStatus() {
        throw new UnsupportedOperationException("getStatus");
    }

    @Override
    public void setStatus(int statusCode) {
        throw new UnsupportedOperationException("setStatus");
    }

    @Override
    public void addHeader(String name, String value) {
        throw new UnsupportedOperationException("addHeader");
    }

    @Override
    public void setHeader(String name, String value) {
        headers.put(name, value);
    }

    @Override
    public void setCookieIfAbsent(NewCookie newCookie) {
        throw new UnsupportedOperationException("setCookieIfAbsent");
    }
}
