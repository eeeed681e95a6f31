package dev.umawide.keycloak.claims;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.LongSupplier;

import jakarta.ws.rs.core.MultivaluedMap;

import org.jboss.logging.Logger;
import org.keycloak.authorization.model.Policy;
import org.keycloak.authorization.model.Resource;
import org.keycloak.authorization.model.ResourceServer;
import org.keycloak.authorization.policy.evaluation.Evaluation;
import org.keycloak.authorization.policy.provider.PolicyProvider;
import org.keycloak.common.util.Time;
import org.keycloak.connections.httpclient.HttpClientProvider;
import org.keycloak.http.HttpRequest;
import org.keycloak.http.HttpResponse;
import org.keycloak.models.ClientModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.SingleUseObjectProvider;
import org.keycloak.services.Urls;

/**
 * The {@code claims-token} policy: reads {@code ticket} and {@code claim_token} from the token
 * request, lets {@link ClaimsTokenEvaluator} decide, and on grant rewrites the permission's claims.
 * Anything that goes wrong is a denial with one log line (reason code, never token material);
 * it never throws, so a bad input can never become a 500.
 */
public final class ClaimsTokenPolicyProvider implements PolicyProvider {

    private static final Logger LOG = Logger.getLogger(ClaimsTokenPolicyProvider.class);

    /** Session attribute: the single-use keys this request has consumed already. */
    static final String CONSUMED_ATTRIBUTE = "dev.umawide.claims-token.consumed";

    /** This realm's issuer URL, which a claims token's {@code aud} must equal. */
    interface AudienceResolver {
        String audience(KeycloakSession session, RealmModel realm);
    }

    /** As Keycloak computes the {@code iss} of its own tokens for the current request (cached: issue 17). */
    private static final IssuerCache ISSUERS = new IssuerCache(Urls::realmIssuer, 256);
    static final AudienceResolver REALM_ISSUER =
            (session, realm) -> ISSUERS.issuer(session.getContext().getUri().getBaseUri(), realm.getName());

    private final JwksCache jwksCache;
    private final DiscoveryCache discoveryCache;
    private final PolicyConfigCache configCache = new PolicyConfigCache(64);
    private final AudienceResolver audienceResolver;
    private final LongSupplier nowSeconds;

    ClaimsTokenPolicyProvider(JwksCache jwksCache, DiscoveryCache discoveryCache) {
        this(jwksCache, discoveryCache, REALM_ISSUER, Time::currentTime);
    }

    ClaimsTokenPolicyProvider(JwksCache jwksCache, DiscoveryCache discoveryCache, AudienceResolver audienceResolver,
            LongSupplier nowSeconds) {
        this.jwksCache = jwksCache;
        this.discoveryCache = discoveryCache;
        this.audienceResolver = audienceResolver;
        this.nowSeconds = nowSeconds;
    }

    @Override
    public void evaluate(Evaluation evaluation) {
        decide(evaluation);
    }

    /** Evaluates; returns null after a grant, the reason after a denial. Never throws (but for VM errors). */
    Reason decide(Evaluation evaluation) {
        long started = System.nanoTime();
        String realmName = "?";
        String policyName = "?";
        KeycloakSession session = null;
        try {
            Policy policy = evaluation.getPolicy();
            policyName = policy.getName();
            session = evaluation.getAuthorizationProvider().getKeycloakSession();
            RealmModel realm = session.getContext().getRealm();
            realmName = realm.getName();

            PolicyConfig config;
            try {
                config = configCache.get(policy.getConfig());
            } catch (InvalidConfigException e) {
                throw new Denied(Reason.CONFIG_INVALID, e.getMessage());
            }

            Resource resource = evaluation.getPermission().getResource();
            if (resource != null && resource.isOwnerManagedAccess()) {
                // Keycloak grants owner-approved or shared permissions on such a resource without
                // running this policy; refusing the honest path too makes the misconfiguration loud.
                throw new Denied(Reason.OWNER_MANAGED_RESOURCE);
            }

            // Before anything is used up: without the key no grant can be attested.
            String macKey = grantMacKey(realm, evaluation);

            HttpRequest http = session.getContext().getHttpRequest();
            MultivaluedMap<String, String> form = http == null ? null : http.getDecodedFormParameters();
            if (form == null) {
                throw new Denied(Reason.NO_REQUEST);
            }
            String ticket = single(form, "ticket", Reason.NO_TICKET);
            String claimToken = single(form, "claim_token", Reason.NO_CLAIM_TOKEN);
            if (form.containsKey("rpt")) {
                // An upgrade merges the previous RPT's permission claims (content binding of
                // another push among them) into this one: one RPT, one verified push.
                throw new Denied(Reason.RPT_UPGRADE);
            }
            String audience = audienceResolver.audience(session, realm);

            TrustScope scope = TrustScope.of(realm.getId(), policy.getId(), config);
            ClaimsTokenEvaluator evaluator = new ClaimsTokenEvaluator(config, verifier(session, config, scope), replayGuard(session));
            Grant grant = evaluator.evaluate(realm.getId(), ticket, claimToken, audience, nowSeconds.getAsLong());
            // The sender is verified (signature, ticket binding, domain trust, single use): now the
            // owner's say, which may refuse him but never admits what verification refused.
            applyOwnerRules(session, realm, resource, grant);

            List<String> dropped = PermissionClaims.rewrite(evaluation.getPermission(), grant, macKey);
            evaluation.grant();
            PolicyMetrics.record(true, System.nanoTime() - started);
            if (LOG.isDebugEnabled()) {
                LOG.debugf("claims-token policy granted: realm=%s policy=%s iss=%s dropped_claims=%s took_us=%d", realmName,
                        policyName, LogSafe.clip(grant.sender().issuer()), LogSafe.clip(dropped.toString()),
                        (System.nanoTime() - started) / 1000);
            }
            return null;
        } catch (Denied d) {
            deny(evaluation, d.reason(), d.detail(), realmName, policyName);
            PolicyMetrics.record(false, System.nanoTime() - started);
            if (d.reason().toClient()) {
                tellClient(session, d.reason());
            }
            return d.reason();
        } catch (Throwable t) {
            if (t instanceof VirtualMachineError) {
                throw (VirtualMachineError) t;
            }
            // Exception messages may quote the input: log only the type.
            deny(evaluation, Reason.INTERNAL_ERROR, t.getClass().getName(), realmName, policyName);
            PolicyMetrics.record(false, System.nanoTime() - started);
            return Reason.INTERNAL_ERROR;
        }
    }

    /** Session attribute: the quota counters this request has charged already. */
    static final String CHARGED_ATTRIBUTE = "dev.umawide.claims-token.charged";

    /**
     * The owner's rules of the permission's resource (its attributes): refuse a sender they do
     * not admit ({@link Reason#OWNER_REFUSED}), then count the grant against the sender's quota
     * ({@link Reason#QUOTA_EXCEEDED}). A permission without a resource has no owner and no rules.
     */
    @SuppressWarnings("unchecked")
    private void applyOwnerRules(KeycloakSession session, RealmModel realm, Resource resource, Grant grant) throws Denied {
        if (resource == null) {
            return;
        }
        OwnerRules rules = OwnerRules.fromAttributes(resource.getAttributes());
        if (rules == OwnerRules.NONE) {
            return;
        }
        EmailAddress sender = EmailAddress.parse(grant.sender().email());
        if (sender == null) {
            throw new Denied(Reason.OWNER_REFUSED, "sender address unusable");
        }
        String why = rules.refusal(sender);
        if (why != null) {
            throw new Denied(Reason.OWNER_REFUSED, why + " resource=" + resource.getId());
        }
        if (!rules.hasQuota()) {
            return;
        }
        Object memo = session.getAttribute(CHARGED_ATTRIBUTE);
        Set<String> charged;
        if (memo instanceof Set) {
            charged = (Set<String>) memo;
        } else {
            charged = new HashSet<>();
            session.setAttribute(CHARGED_ATTRIBUTE, charged);
        }
        SingleUseObjectProvider suo = session.singleUseObjects();
        OwnerQuota quota = new OwnerQuota(new OwnerQuota.Store() {
            @Override
            public boolean putIfAbsent(String key, long lifespanSeconds) {
                return suo.putIfAbsent(key, lifespanSeconds);
            }

            @Override
            public java.util.Map<String, String> get(String key) {
                return suo.get(key);
            }

            @Override
            public void put(String key, long lifespanSeconds, java.util.Map<String, String> notes) {
                suo.put(key, lifespanSeconds, notes);
            }

            @Override
            public void remove(String key) {
                suo.remove(key);
            }
        }, Thread::sleep, charged);
        long bytes = Long.parseLong(grant.vetted().get(ContentMetadata.CONTENT_LENGTH));
        quota.charge(realm.getId(), resource.getId(), sender.address(), bytes, QuotaClock.now(realm, nowSeconds.getAsLong()), rules);
    }

    /**
     * Puts an owner's refusal into the token endpoint's response (header
     * {@link OwnerRules#REFUSAL_HEADER}); Keycloak's body stays the generic {@code access_denied}.
     * Only {@link Reason#toClient()} reasons come here.
     */
    private static void tellClient(KeycloakSession session, Reason reason) {
        try {
            HttpResponse response = session == null ? null : session.getContext().getHttpResponse();
            if (response != null) {
                response.setHeader(OwnerRules.REFUSAL_HEADER, reason.code());
            }
        } catch (RuntimeException e) {
            LOG.debugf("claims-token policy: no response to tell the client: %s", e.getClass().getName());
        }
    }

    /**
     * The key of {@code grant_mac}: the client secret of the resource server that owns the
     * permission's resource, which the Resource Server also holds (its PAT is asked for with it).
     */
    private static String grantMacKey(RealmModel realm, Evaluation evaluation) throws Denied {
        ResourceServer rs = evaluation.getPermission().getResourceServer();
        ClientModel client = rs == null ? null : realm.getClientById(rs.getClientId());
        String secret = client == null ? null : client.getSecret();
        if (secret == null || secret.isEmpty()) {
            throw new Denied(Reason.GRANT_KEY_MISSING);
        }
        return secret;
    }

    private static void deny(Evaluation evaluation, Reason reason, String detail, String realm, String policy) {
        LOG.infof("claims-token policy denied: reason=%s realm=%s policy=%s%s", reason.code(), LogSafe.clip(realm),
                LogSafe.clip(policy), detail == null ? "" : " detail=" + LogSafe.clip(detail));
        try {
            evaluation.deny();
        } catch (RuntimeException e) {
            LOG.warnf("claims-token policy: deny() failed: %s", e.getClass().getName());
        }
    }

    /** The one value of a form field; absent or repeated fields are refused. */
    private static String single(MultivaluedMap<String, String> form, String name, Reason reason) throws Denied {
        List<String> values = form.get(name);
        if (values == null || values.size() != 1 || values.get(0) == null || values.get(0).isEmpty()) {
            throw new Denied(reason);
        }
        return values.get(0);
    }

    private ClaimsTokenVerifier verifier(KeycloakSession session, PolicyConfig config, TrustScope scope) {
        HttpFetcher fetcher = new LazyFetcher(session, config);
        JwksCache.Settings jwksSettings = JwksCache.Settings.of(config, scope);
        DiscoveryCache.Settings discoverySettings = DiscoveryCache.Settings.of(config, scope);
        return new ClaimsTokenVerifier(config,
                (uri, kid, alg) -> jwksCache.find(uri, kid, alg, fetcher, jwksSettings),
                domain -> discoveryCache.get(domain, fetcher, discoverySettings));
    }

    @SuppressWarnings("unchecked")
    private static ReplayGuard replayGuard(KeycloakSession session) {
        Object memo = session.getAttribute(CONSUMED_ATTRIBUTE);
        Set<String> consumed;
        if (memo instanceof Set) {
            consumed = (Set<String>) memo;
        } else {
            consumed = new HashSet<>();
            session.setAttribute(CONSUMED_ATTRIBUTE, consumed);
        }
        return new ReplayGuard((key, lifespan) -> session.singleUseObjects().putIfAbsent(key, lifespan), consumed);
    }

    /** Gets Keycloak's HTTP client only when a fetch is really needed (a warm cache needs none). */
    private static final class LazyFetcher implements HttpFetcher {
        private final KeycloakSession session;
        private final PolicyConfig config;

        LazyFetcher(KeycloakSession session, PolicyConfig config) {
            this.session = session;
            this.config = config;
        }

        @Override
        public byte[] get(java.net.URI uri) throws java.io.IOException {
            HttpClientProvider provider = session.getProvider(HttpClientProvider.class);
            if (provider == null) {
                throw new java.io.IOException("no HttpClientProvider");
            }
            long cap = Math.min(config.httpMaxResponseBytes(), provider.getMaxConsumedResponseSize());
            return new KeycloakHttpFetcher(provider.getHttpClient(), UrlGuard.of(config, UrlGuard.SYSTEM),
                    config.httpTimeoutMillis(), (int) cap).get(uri);
        }
    }

    @Override
    public void close() {
    }
}
