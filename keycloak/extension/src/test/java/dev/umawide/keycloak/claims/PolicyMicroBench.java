package dev.umawide.keycloak.claims;

import java.lang.reflect.Proxy;
import java.security.Provider;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.keycloak.common.crypto.CryptoIntegration;
import org.keycloak.common.crypto.CryptoProvider;

/**
 * Not a test: the policy's pure compute per grant (docs/PROTOCOL.md 8.1-8.5 and the claims
 * rewrite's MAC), without Keycloak, to tell it apart from what Keycloak and the JIT add
 * (issue 17). Keycloak's BouncyCastle is stood in for by the same BouncyCastle version.
 *
 * <pre>
 * mvn -q -f keycloak/extension/pom.xml test-compile dependency:build-classpath -Dmdep.outputFile=target/cp.txt
 * java -cp keycloak/extension/target/test-classes:keycloak/extension/target/classes:$(cat keycloak/extension/target/cp.txt) \
 *     dev.umawide.keycloak.claims.PolicyMicroBench [grants per round] [rounds]
 * </pre>
 */
public final class PolicyMicroBench {

    private static final java.lang.management.ThreadMXBean THREADS = java.lang.management.ManagementFactory.getThreadMXBean();

    private PolicyMicroBench() {
    }

    public static void main(String[] args) throws Exception {
        int perRound = args.length > 0 ? Integer.parseInt(args[0]) : 300;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 20;
        Provider bc = new BouncyCastleProvider();
        CryptoIntegration.setProvider((CryptoProvider) Proxy.newProxyInstance(PolicyMicroBench.class.getClassLoader(),
                new Class<?>[] {CryptoProvider.class}, (proxy, method, margs) -> {
                    if (method.getName().equals("getBouncyCastleProvider")) {
                        return bc;
                    }
                    throw new UnsupportedOperationException(method.getName());
                }));
        TokenFixture f = new TokenFixture();
        PolicyConfig config = f.config();
        ClaimsTokenVerifier verifier = f.verifier(config);
        String macKey = "a-client-secret-of-32-characters";

        // The same inputs every round (each round a fresh single-use store): signing stays out of the profile.
        List<String[]> inputs = new ArrayList<>(perRound);
        for (int i = 0; i < perRound; i++) {
            String ticket = TokenFixture.ticket(Map.of("exp", f.now + 300, "jti", UUID.randomUUID().toString(),
                    "claims", Map.of("incoming_uri", List.of(TokenFixture.INCOMING))));
            Map<String, Object> c = f.claims();
            c.put("ticket_digest", TokenFixture.digest(ticket));
            inputs.add(new String[] {ticket, TokenFixture.claimToken(f.sign(c))});
        }
        for (int round = 1; round <= rounds; round++) {
            MemoryStore store = new MemoryStore();
            long[] phase = new long[6];
            long total = 0;
            long cpu0 = THREADS.getCurrentThreadCpuTime();
            long wall0 = System.nanoTime();
            for (String[] in : inputs) {
                long t0 = System.nanoTime();
                Tickets.Payload tp = Tickets.payload(in[0]);
                PushedClaims pushed = PushedClaims.decode(in[1], config.maxClaimTokenLength());
                Map<String, String> vetted = ClaimsTokenEvaluator.vetted(pushed);
                IncomingUri.requireMatch(IncomingUri.pushed(pushed), Tickets.incomingUri(tp));
                String digest = Base64Url.ticketDigest(in[0]);
                long t1 = System.nanoTime();
                CompactJws jws = CompactJws.parse(pushed.claimsToken(), config.maxClaimsTokenLength());
                long t2 = System.nanoTime();
                Jwk key = f.jwksCache.find(java.net.URI.create(TokenFixture.JWKS), jws.kid(), JwsAlgorithm.ES256, f.fetcher,
                        JwksCache.Settings.of(config, TrustScope.of("realm-id", "policy-id", config)));
                boolean ok = JwsAlgorithm.ES256.verify(key, jws.signingInput(), jws.signature());
                long t3 = System.nanoTime();
                if (!ok) {
                    throw new IllegalStateException("bad signature");
                }
                // The whole evaluation again (parse and verify included), then the rewrite's MAC.
                Grant g = new ClaimsTokenEvaluator(config, verifier, new ReplayGuard(store, new HashSet<>()))
                        .evaluate("realm-id", in[0], in[1], TokenFixture.AUD, f.now);
                long t4 = System.nanoTime();
                Map<String, String> out = new LinkedHashMap<>(g.vetted());
                out.put(PermissionClaims.SENDER_EMAIL, g.sender().email());
                out.put(PermissionClaims.GRANT_ID, PermissionClaims.newGrantId());
                String mac = GrantMac.compute(macKey, "resource-id", out);
                long t5 = System.nanoTime();
                if (mac.length() != 43 || vetted.isEmpty() || digest.isEmpty()) {
                    throw new IllegalStateException();
                }
                phase[0] += t1 - t0;
                phase[1] += t2 - t1;
                phase[2] += t3 - t2;
                phase[3] += t4 - t3;
                phase[4] += t5 - t4;
                total += (t4 - t3) + (t5 - t4);
            }
            long cpu = THREADS.getCurrentThreadCpuTime() - cpu0;
            long wall = System.nanoTime() - wall0;
            System.out.printf("round %2d (%5d grants): all phases: cpu %6.1f us/grant, wall %6.1f%n", round, round * perRound,
                    cpu / 1e3 / perRound, wall / 1e3 / perRound);
            System.out.printf("round %2d (%5d grants): evaluate+mac %6.1f us/grant | ticket,pushed,digest %5.1f  jws parse %5.1f"
                    + "  key+ES256 %6.1f  evaluate %6.1f  mac+grant_id %5.1f%n", round, round * perRound, total / 1e3 / perRound,
                    phase[0] / 1e3 / perRound, phase[1] / 1e3 / perRound, phase[2] / 1e3 / perRound, phase[3] / 1e3 / perRound,
                    phase[4] / 1e3 / perRound);
        }
    }
}
