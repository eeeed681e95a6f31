package dev.umawide.keycloak.claims;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

import org.apache.http.HttpEntity;
import org.apache.http.client.config.RequestConfig;
import org.apache.http.client.methods.CloseableHttpResponse;
import org.apache.http.client.methods.HttpGet;
import org.apache.http.conn.DnsResolver;
import org.apache.http.conn.util.InetAddressUtils;
import org.apache.http.impl.client.CloseableHttpClient;
import org.apache.http.impl.client.HttpClientBuilder;

/**
 * Fetches after the {@link UrlGuard} check: no redirects, a connect/read timeout, an overall
 * deadline, status 200 only, and a response size cap.
 *
 * <p>In strict mode (the default) the request goes through a client of its own whose DNS resolver
 * answers only the checked host name, with only the addresses the guard checked: the connection
 * reaches an address the guard approved, with the original host name for TLS SNI and
 * certificate checks, and the name is never resolved a second time (issue 12, finding 7). That
 * client trusts the JVM's default truststore (where Keycloak puts its {@code truststore-paths})
 * and uses no proxy: a proxy would resolve the name again. A host that is an address literal
 * needs no resolution, so Keycloak's own client (its truststore and proxy mappings) fetches it
 * after the guard's check. With {@code allowInsecureUrls}
 * (development only) nothing is checked and Keycloak's own client (its truststore and proxy
 * settings) is used.
 *
 * <p>The deadline (twice the timeout) covers the whole exchange: a watchdog aborts the request
 * when it passes, wherever it is. The socket timeout alone does not bound a server that sends
 * its status line and then one header byte just before each timeout, and would keep a Keycloak
 * request thread for as long as that server wishes.
 */
final class KeycloakHttpFetcher implements HttpFetcher {

    /** Aborts requests that pass their deadline; one daemon thread for all fetches. */
    private static final ScheduledThreadPoolExecutor WATCHDOG = watchdog();

    private static ScheduledThreadPoolExecutor watchdog() {
        ScheduledThreadPoolExecutor e = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "claims-token-fetch-deadline");
            t.setDaemon(true);
            return t;
        });
        e.setRemoveOnCancelPolicy(true);
        return e;
    }

    private final CloseableHttpClient client;
    private final UrlGuard guard;
    private final int timeoutMillis;
    private final int maxBytes;

    KeycloakHttpFetcher(CloseableHttpClient client, UrlGuard guard, int timeoutMillis, int maxBytes) {
        this.client = client;
        this.guard = guard;
        this.timeoutMillis = timeoutMillis;
        this.maxBytes = maxBytes;
    }

    @Override
    public byte[] get(URI uri) throws IOException {
        InetAddress[] checked = guard.check(uri);
        if (checked == null || isAddressLiteral(uri.getHost())) {
            // Insecure mode, or a host that is an address: no name is resolved, so nothing can
            // change between the check and the connection, and Keycloak's own client (its
            // truststore and proxy mappings) may carry the request.
            return fetch(client, uri);
        }
        try (CloseableHttpClient pinned = pinnedClient(uri.getHost(), checked)) {
            return fetch(pinned, uri);
        }
    }

    /** True for an IPv4 or IPv6 address literal (IPv6 in brackets as URIs write it). */
    static boolean isAddressLiteral(String host) {
        if (host == null) {
            return false;
        }
        String bare = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        return InetAddressUtils.isIPv4Address(bare) || InetAddressUtils.isIPv6Address(bare);
    }

    /** A one-off client that can reach {@code host} only, at {@code addresses} only. */
    static CloseableHttpClient pinnedClient(String host, InetAddress[] addresses) {
        String bare = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        InetAddress[] pinned = addresses.clone();
        DnsResolver resolver = name -> {
            String n = name.startsWith("[") && name.endsWith("]") ? name.substring(1, name.length() - 1) : name;
            if (n.equalsIgnoreCase(bare)) {
                return pinned.clone();
            }
            throw new UnknownHostException("not the checked host");
        };
        return HttpClientBuilder.create()
                .setDnsResolver(resolver)
                .disableRedirectHandling()
                .disableAutomaticRetries()
                .disableCookieManagement()
                .disableAuthCaching()
                .setMaxConnTotal(1)
                .build();
    }

    private byte[] fetch(CloseableHttpClient client, URI uri) throws IOException {
        HttpGet get = new HttpGet(uri);
        get.setConfig(RequestConfig.custom()
                .setConnectTimeout(timeoutMillis)
                .setConnectionRequestTimeout(timeoutMillis)
                .setSocketTimeout(timeoutMillis)
                .setRedirectsEnabled(false)
                .build());
        get.setHeader("Accept", "application/json");
        long deadline = System.nanoTime() + 2L * timeoutMillis * 1_000_000L;
        ScheduledFuture<?> abort = WATCHDOG.schedule(get::abort, 2L * timeoutMillis, TimeUnit.MILLISECONDS);
        try (CloseableHttpResponse response = client.execute(get)) {
            int status = response.getStatusLine().getStatusCode();
            HttpEntity entity = response.getEntity();
            if (status != 200 || entity == null) {
                throw new IOException("HTTP status " + status);
            }
            if (entity.getContentLength() > maxBytes) {
                throw new IOException("response too large");
            }
            try (InputStream in = entity.getContent()) {
                return readBounded(in, maxBytes, deadline, get);
            }
        } catch (IOException e) {
            if (get.isAborted()) {
                throw new IOException("response too slow");
            }
            throw e;
        } finally {
            abort.cancel(false);
            get.releaseConnection();
        }
    }

    static byte[] readBounded(InputStream in, int maxBytes, long deadlineNanos, HttpGet toAbort) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        int n;
        while ((n = in.read(buf)) != -1) {
            if (out.size() + n > maxBytes) {
                if (toAbort != null) {
                    toAbort.abort();
                }
                throw new IOException("response too large");
            }
            out.write(buf, 0, n);
            if (System.nanoTime() > deadlineNanos) {
                if (toAbort != null) {
                    toAbort.abort();
                }
                throw new IOException("response too slow");
            }
        }
        return out.toByteArray();
    }
}
