package dev.umawide.keycloak.claims;

import java.io.IOException;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.util.Locale;
import java.util.function.Predicate;

/**
 * Decides whether the policy may fetch a URL: https only, and the host must resolve only to
 * public addresses (no loopback, private, link-local, unique-local, CGNAT, multicast,
 * documentation or unspecified ones). With {@code allowPrivateAddresses} the host may resolve to
 * loopback and private addresses too (an ecosystem inside one private network), still over https
 * with the certificate verified; only the unspecified and multicast addresses stay refused. With
 * {@code allowInsecureUrls} both rules are lifted (development only).
 *
 * <p>{@link #check} returns the addresses it checked: the fetcher connects to those and never
 * resolves the name again, so a DNS answer that changes between check and connect cannot reach
 * an address the guard refused (issue 12, finding 7).
 */
final class UrlGuard {

    /** Name resolution, replaceable in tests. */
    interface Resolver {
        InetAddress[] resolve(String host) throws UnknownHostException;
    }

    static final Resolver SYSTEM = InetAddress::getAllByName;

    private final boolean allowInsecure;
    private final Resolver resolver;
    private final Predicate<InetAddress> allowed;
    private final boolean httpsOnly;

    UrlGuard(boolean allowInsecure, Resolver resolver) {
        this(allowInsecure, resolver, UrlGuard::isPublic, true);
    }

    /** The guard a policy config asks for. */
    static UrlGuard of(PolicyConfig config, Resolver resolver) {
        return new UrlGuard(config.allowInsecureUrls(), resolver,
                config.allowPrivateAddresses() ? UrlGuard::isUnicast : UrlGuard::isPublic, true);
    }

    /** Any unicast address, private and loopback ones included. */
    static boolean isUnicast(InetAddress a) {
        return !a.isAnyLocalAddress() && !a.isMulticastAddress();
    }

    /**
     * Tests only: {@code allowed} says which addresses strict mode may reach and {@code httpsOnly}
     * whether it requires https (a loopback test server speaks plain http).
     */
    UrlGuard(boolean allowInsecure, Resolver resolver, Predicate<InetAddress> allowed, boolean httpsOnly) {
        this.allowInsecure = allowInsecure;
        this.resolver = resolver;
        this.allowed = allowed;
        this.httpsOnly = httpsOnly;
    }

    /**
     * Refuses (IOException) a URL the policy must not fetch. Returns the checked addresses to
     * connect to; null with {@code allowInsecureUrls}, where no address is checked and the
     * ordinary resolver is used (development only).
     */
    InetAddress[] check(URI uri) throws IOException {
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        if (uri.getHost() == null || uri.getRawUserInfo() != null) {
            throw new IOException("refused URL: no host or user info present");
        }
        if (allowInsecure) {
            if (!scheme.equals("https") && !scheme.equals("http")) {
                throw new IOException("refused URL: scheme " + LogSafe.clip(scheme));
            }
            return null;
        }
        if (!scheme.equals("https") && (httpsOnly || !scheme.equals("http"))) {
            throw new IOException("refused URL: not https");
        }
        String host = uri.getHost();
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        InetAddress[] addresses = resolver.resolve(host);
        if (addresses == null || addresses.length == 0) {
            throw new UnknownHostException("no address");
        }
        for (InetAddress a : addresses) {
            if (a == null || !allowed.test(a)) {
                throw new IOException("refused URL: host resolves to a non-public address");
            }
        }
        return addresses.clone();
    }

    /** False for every address that is not globally routable unicast. */
    static boolean isPublic(InetAddress a) {
        if (a.isAnyLocalAddress() || a.isLoopbackAddress() || a.isLinkLocalAddress() || a.isSiteLocalAddress()
                || a.isMulticastAddress()) {
            return false;
        }
        byte[] b = a.getAddress();
        if (a instanceof Inet4Address) {
            int b0 = b[0] & 0xff;
            int b1 = b[1] & 0xff;
            if (b0 == 0 || b0 >= 240) {
                return false; // "this network", reserved and broadcast
            }
            if (b0 == 100 && b1 >= 64 && b1 <= 127) {
                return false; // 100.64.0.0/10 shared address space (CGNAT)
            }
            if (b0 == 192 && b1 == 0 && (b[2] & 0xff) == 0) {
                return false; // 192.0.0.0/24 IETF protocol assignments
            }
            if (b0 == 198 && (b1 == 18 || b1 == 19)) {
                return false; // 198.18.0.0/15 benchmarking
            }
            if ((b0 == 192 && b1 == 0 && (b[2] & 0xff) == 2) || (b0 == 198 && b1 == 51 && (b[2] & 0xff) == 100)
                    || (b0 == 203 && b1 == 0 && (b[2] & 0xff) == 113)) {
                return false; // 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 documentation (TEST-NET-1 to 3)
            }
            return true;
        }
        if (a instanceof Inet6Address) {
            int b0 = b[0] & 0xff;
            if ((b0 & 0xfe) == 0xfc) {
                return false; // fc00::/7 unique local
            }
            if (b0 == 0xfe && (b[1] & 0xc0) == 0xc0) {
                return false; // fec0::/10 deprecated site-local
            }
            boolean first10Zero = true;
            for (int i = 0; i < 10; i++) {
                if (b[i] != 0) {
                    first10Zero = false;
                    break;
                }
            }
            if (first10Zero && (((b[10] & 0xff) == 0xff && (b[11] & 0xff) == 0xff) || (b[10] == 0 && b[11] == 0))) {
                // IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d): judge the embedded IPv4 address
                try {
                    byte[] v4 = {b[12], b[13], b[14], b[15]};
                    return isPublic(InetAddress.getByAddress(v4));
                } catch (UnknownHostException e) {
                    return false;
                }
            }
            if (b0 == 0x20 && (b[1] & 0xff) == 0x01 && (b[2] & 0xff) == 0x0d && (b[3] & 0xff) == 0xb8) {
                return false; // 2001:db8::/32 documentation
            }
            if (b0 == 0x00 && b[1] == 0x64 && (b[2] & 0xff) == 0xff && (b[3] & 0xff) == 0x9b) {
                return false; // 64:ff9b::/96 NAT64 (can reach any IPv4, private ones too)
            }
            return true;
        }
        return false;
    }
}
