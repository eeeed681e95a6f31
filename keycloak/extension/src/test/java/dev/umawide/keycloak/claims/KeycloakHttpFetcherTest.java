package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.http.impl.client.CloseableHttpClient;
import org.apache.http.impl.client.HttpClients;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import com.sun.net.httpserver.HttpServer;

/** The real fetcher (Apache HttpClient, as Keycloak's HttpClientProvider gives it) against a local server. */
class KeycloakHttpFetcherTest {

    HttpServer server;
    CloseableHttpClient client;
    String base;
    final AtomicInteger hits = new AtomicInteger();

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/jwks", ex -> {
            hits.incrementAndGet();
            byte[] body = "{\"keys\":[]}".getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(200, body.length);
            try (OutputStream o = ex.getResponseBody()) {
                o.write(body);
            }
        });
        server.createContext("/big", ex -> {
            ex.sendResponseHeaders(200, 5000);
            try (OutputStream o = ex.getResponseBody()) {
                o.write(new byte[5000]);
            }
        });
        server.createContext("/chunked-big", ex -> {
            ex.sendResponseHeaders(200, 0);
            try (OutputStream o = ex.getResponseBody()) {
                for (int i = 0; i < 10; i++) {
                    o.write(new byte[1000]);
                }
            } catch (IOException e) {
                // the client hung up: expected
            }
        });
        server.createContext("/redirect", ex -> {
            ex.getResponseHeaders().add("Location", base + "/jwks");
            ex.sendResponseHeaders(302, -1);
            ex.close();
        });
        server.createContext("/missing", ex -> {
            ex.sendResponseHeaders(404, -1);
            ex.close();
        });
        server.createContext("/slow", ex -> {
            try {
                Thread.sleep(3000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            ex.sendResponseHeaders(200, -1);
            ex.close();
        });
        server.start();
        base = "http://127.0.0.1:" + server.getAddress().getPort();
        client = HttpClients.createDefault();
    }

    @AfterEach
    void stop() throws IOException {
        client.close();
        server.stop(0);
    }

    private KeycloakHttpFetcher fetcher(boolean insecure) {
        return new KeycloakHttpFetcher(client, new UrlGuard(insecure, UrlGuard.SYSTEM), 500, 4096);
    }

    @Test
    void fetches() throws Exception {
        assertArrayEquals("{\"keys\":[]}".getBytes(StandardCharsets.UTF_8), fetcher(true).get(URI.create(base + "/jwks")));
    }

    @Test
    void guardRefusesBeforeConnecting() {
        assertThrows(IOException.class, () -> fetcher(false).get(URI.create(base + "/jwks")));
        assertEquals(0, hits.get());
    }

    /**
     * Finding 7: the name is resolved once, by the guard, and the connection goes to the address
     * the guard checked. The resolver answers a loopback address first and a refused one after;
     * {@code .invalid} never resolves through the system, so success proves the pinned address was used.
     */
    @Test
    void connectsToTheCheckedAddressWithoutResolvingAgain() throws Exception {
        AtomicInteger lookups = new AtomicInteger();
        UrlGuard.Resolver changing = host -> {
            assertEquals("jwks.invalid", host);
            return lookups.getAndIncrement() == 0
                    ? new InetAddress[] {InetAddress.getByName("127.0.0.1")}
                    : new InetAddress[] {InetAddress.getByName("10.0.0.1")};
        };
        UrlGuard guard = new UrlGuard(false, changing, InetAddress::isLoopbackAddress, false);
        KeycloakHttpFetcher f = new KeycloakHttpFetcher(client, guard, 500, 4096);
        URI uri = URI.create("http://jwks.invalid:" + server.getAddress().getPort() + "/jwks");
        assertArrayEquals("{\"keys\":[]}".getBytes(StandardCharsets.UTF_8), f.get(uri));
        assertEquals(1, lookups.get(), "resolved once, by the guard");
        assertEquals(1, hits.get());
        // The next fetch is checked anew: the second answer is refused before any connection.
        assertThrows(IOException.class, () -> f.get(uri));
        assertEquals(2, lookups.get());
        assertEquals(1, hits.get());
    }

    @Test
    void addressLiterals() {
        org.junit.jupiter.api.Assertions.assertTrue(KeycloakHttpFetcher.isAddressLiteral("192.0.2.1"));
        org.junit.jupiter.api.Assertions.assertTrue(KeycloakHttpFetcher.isAddressLiteral("[2001:db8::1]"));
        org.junit.jupiter.api.Assertions.assertFalse(KeycloakHttpFetcher.isAddressLiteral("cp.foo.example"));
        org.junit.jupiter.api.Assertions.assertFalse(KeycloakHttpFetcher.isAddressLiteral("2130706433"));
        org.junit.jupiter.api.Assertions.assertFalse(KeycloakHttpFetcher.isAddressLiteral("127.1"));
        org.junit.jupiter.api.Assertions.assertFalse(KeycloakHttpFetcher.isAddressLiteral(null));
    }

    /** An address literal is checked and then fetched with Keycloak's client, resolving nothing. */
    @Test
    void addressLiteralGoesThroughKeycloaksClientAfterTheCheck() throws Exception {
        AtomicInteger lookups = new AtomicInteger();
        UrlGuard.Resolver counting = host -> {
            lookups.incrementAndGet();
            return InetAddress.getAllByName(host);
        };
        UrlGuard guard = new UrlGuard(false, counting, InetAddress::isLoopbackAddress, false);
        KeycloakHttpFetcher f = new KeycloakHttpFetcher(client, guard, 500, 4096);
        assertArrayEquals("{\"keys\":[]}".getBytes(StandardCharsets.UTF_8),
                f.get(URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/jwks")));
        assertEquals(1, hits.get());
        UrlGuard strict = new UrlGuard(false, counting, a -> false, false);
        assertThrows(IOException.class, () -> new KeycloakHttpFetcher(client, strict, 500, 4096)
                .get(URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/jwks")));
        assertEquals(1, hits.get(), "a refused address literal is never connected to");
    }

    @Test
    void pinnedClientReachesOnlyTheCheckedHost() throws Exception {
        InetAddress[] loopback = {InetAddress.getByName("127.0.0.1")};
        try (CloseableHttpClient pinned = KeycloakHttpFetcher.pinnedClient("jwks.invalid", loopback)) {
            org.apache.http.client.methods.HttpGet other = new org.apache.http.client.methods.HttpGet(
                    "http://other.invalid:" + server.getAddress().getPort() + "/jwks");
            assertThrows(java.net.UnknownHostException.class, () -> pinned.execute(other).close());
        }
        assertEquals(0, hits.get());
    }

    @Test
    void sizeCapped() {
        assertThrows(IOException.class, () -> fetcher(true).get(URI.create(base + "/big")));
        assertThrows(IOException.class, () -> fetcher(true).get(URI.create(base + "/chunked-big")));
    }

    @Test
    void redirectsNotFollowed() {
        assertThrows(IOException.class, () -> fetcher(true).get(URI.create(base + "/redirect")));
        assertEquals(0, hits.get());
    }

    @Test
    void onlyStatus200() {
        assertThrows(IOException.class, () -> fetcher(true).get(URI.create(base + "/missing")));
    }

    @Test
    void headersTrickledUnderTheSocketTimeoutStillEndAtTheDeadline() throws Exception {
        // Status line, then a header line every 200 ms: the 500 ms socket timeout never fires,
        // only the overall deadline (twice the timeout) ends the exchange.
        try (ServerSocket slow = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            Thread server = new Thread(() -> {
                try (Socket s = slow.accept(); OutputStream o = s.getOutputStream()) {
                    o.write("HTTP/1.1 200 OK\r\n".getBytes(StandardCharsets.US_ASCII));
                    for (int i = 0; i < 100; i++) {
                        o.write("X-Slow: a\r\n".getBytes(StandardCharsets.US_ASCII));
                        o.flush();
                        Thread.sleep(200);
                    }
                } catch (IOException | InterruptedException e) {
                    // the client hung up: expected
                }
            });
            server.setDaemon(true);
            server.start();
            long t0 = System.nanoTime();
            IOException e = assertThrows(IOException.class,
                    () -> fetcher(true).get(URI.create("http://127.0.0.1:" + slow.getLocalPort() + "/jwks")));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            org.junit.jupiter.api.Assertions.assertTrue(ms < 5000, "took " + ms + " ms with a 1000 ms deadline");
            assertEquals("response too slow", e.getMessage());
        }
    }

    @Test
    void timesOut() {
        long t0 = System.nanoTime();
        assertThrows(IOException.class, () -> fetcher(true).get(URI.create(base + "/slow")));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        org.junit.jupiter.api.Assertions.assertTrue(ms < 2500, "took " + ms + " ms with a 500 ms timeout");
    }
}
