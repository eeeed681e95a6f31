package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class UrlGuardTest {

    private static UrlGuard guard(boolean insecure, String... addresses) {
        return new UrlGuard(insecure, host -> {
            InetAddress[] out = new InetAddress[addresses.length];
            for (int i = 0; i < addresses.length; i++) {
                out[i] = InetAddress.getByName(addresses[i]);
            }
            return out;
        });
    }

    @ParameterizedTest
    @ValueSource(strings = {"127.0.0.1", "127.5.6.7", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
            "0.0.0.0", "100.64.0.1", "100.127.255.255", "224.0.0.1", "255.255.255.255", "192.0.0.8", "198.18.0.1",
            "192.0.2.1", "198.51.100.7", "203.0.113.255",
            "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
            "::ffff:169.254.169.254", "2001:db8::1", "64:ff9b::a00:1"})
    void nonPublicAddressesRefused(String address) throws Exception {
        assertFalse(UrlGuard.isPublic(InetAddress.getByName(address)), address);
        assertThrows(IOException.class, () -> guard(false, address).check(URI.create("https://cp.example/jwks")));
    }

    @ParameterizedTest
    @ValueSource(strings = {"93.184.215.14", "8.8.8.8", "100.63.255.255", "100.128.0.1", "172.32.0.1", "192.0.3.1", "198.51.101.1", "203.0.114.1", "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
            "::ffff:8.8.8.8"})
    void publicAddressesAllowed(String address) throws Exception {
        assertTrue(UrlGuard.isPublic(InetAddress.getByName(address)), address);
        assertDoesNotThrow(() -> guard(false, address).check(URI.create("https://cp.example/jwks")));
    }

    @Test
    void oneBadAddressAmongManyRefuses() {
        assertThrows(IOException.class, () -> guard(false, "8.8.8.8", "10.0.0.1").check(URI.create("https://cp.example/jwks")));
    }

    @Test
    void httpsOnly() {
        assertThrows(IOException.class, () -> guard(false, "8.8.8.8").check(URI.create("http://cp.example/jwks")));
        assertThrows(IOException.class, () -> guard(false, "8.8.8.8").check(URI.create("ftp://cp.example/jwks")));
        assertThrows(IOException.class, () -> guard(false, "8.8.8.8").check(URI.create("https://user@cp.example/jwks")));
        assertThrows(IOException.class, () -> guard(true, "8.8.8.8").check(URI.create("https://user@cp.example/jwks")));
        assertThrows(IOException.class, () -> guard(false, "8.8.8.8").check(URI.create("file:///etc/passwd")));
    }

    @Test
    void unresolvableRefused() {
        UrlGuard g = new UrlGuard(false, host -> {
            throw new UnknownHostException(host);
        });
        assertThrows(IOException.class, () -> g.check(URI.create("https://nowhere.example/jwks")));
        UrlGuard empty = new UrlGuard(false, host -> new InetAddress[0]);
        assertThrows(IOException.class, () -> empty.check(URI.create("https://nowhere.example/jwks")));
    }

    @Test
    void insecureDevelopmentModeAllowsHttpAndLoopback() {
        assertDoesNotThrow(() -> guard(true, "127.0.0.1").check(URI.create("http://127.0.0.1:8081/jwks")));
        assertDoesNotThrow(() -> guard(true, "10.0.0.1").check(URI.create("https://cp.internal/jwks")));
        assertThrows(IOException.class, () -> guard(true, "127.0.0.1").check(URI.create("ftp://127.0.0.1/jwks")));
    }

    @Test
    void readIsBounded() throws Exception {
        long later = System.nanoTime() + 60_000_000_000L;
        assertArrayEquals(new byte[100], KeycloakHttpFetcher.readBounded(new ByteArrayInputStream(new byte[100]), 100, later, null));
        assertThrows(IOException.class, () -> KeycloakHttpFetcher.readBounded(new ByteArrayInputStream(new byte[101]), 100, later, null));
    }

    @Test
    void readHasADeadline() {
        InputStream endless = new InputStream() {
            @Override
            public int read() {
                return 'x';
            }

            @Override
            public int read(byte[] b) {
                b[0] = 'x';
                return 1;
            }
        };
        assertThrows(IOException.class, () -> KeycloakHttpFetcher.readBounded(endless, 1 << 30, System.nanoTime() - 1, null));
    }
    @Test
    void privateAddressesAllowedOnlyWhereConfiguredAndStillHttpsOnly() throws Exception {
        UrlGuard.Resolver tenNet = host -> new InetAddress[] {InetAddress.getByName("10.0.3.2")};
        PolicyConfig lax = PolicyConfig.parse(java.util.Map.of("allowPrivateAddresses", "true"), true);
        PolicyConfig strict = PolicyConfig.parse(java.util.Map.of(), true);
        assertDoesNotThrow(() -> UrlGuard.of(lax, tenNet).check(URI.create("https://foo.example/.well-known/x")));
        assertThrows(IOException.class, () -> UrlGuard.of(lax, tenNet).check(URI.create("http://foo.example/.well-known/x")));
        assertThrows(IOException.class, () -> UrlGuard.of(strict, tenNet).check(URI.create("https://foo.example/.well-known/x")));
        UrlGuard.Resolver any = host -> new InetAddress[] {InetAddress.getByName("0.0.0.0")};
        assertThrows(IOException.class, () -> UrlGuard.of(lax, any).check(URI.create("https://foo.example/x")));
    }
}
