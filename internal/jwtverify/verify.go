package jwtverify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultAlgorithms are the asymmetric algorithms accepted unless configured
// otherwise. "none" and HMAC are never accepted: Config refuses them.
var DefaultAlgorithms = []string{"RS256", "ES256", "PS256", "EdDSA"}

// DefaultMaxTokenBytes bounds a token before it is parsed.
const DefaultMaxTokenBytes = 16 << 10

// ErrInvalidToken wraps every verification failure.
var ErrInvalidToken = errors.New("invalid token")

// Config of a Verifier.
type Config struct {
	// Issuer the token's iss must equal (required).
	Issuer string
	// Audience the token's aud must contain; empty skips the check.
	Audience string
	// Algorithms allowed; default DefaultAlgorithms.
	Algorithms []string
	// Leeway for exp, nbf and iat; default 30 seconds.
	Leeway time.Duration
	// Keys supply the verification keys (required).
	Keys KeySource
	// MaxTokenBytes; default DefaultMaxTokenBytes.
	MaxTokenBytes int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Verifier checks JWTs against a Config.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
}

// New checks the configuration and builds a Verifier.
func New(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Keys == nil {
		return nil, errors.New("jwtverify: Issuer and Keys are required")
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	for _, a := range cfg.Algorithms {
		switch a {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
		default:
			return nil, fmt.Errorf("jwtverify: algorithm %q is not allowed (asymmetric JWS algorithms only)", a)
		}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.MaxTokenBytes == 0 {
		cfg.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Verifier{cfg: cfg, parser: jwt.NewParser(opts...)}, nil
}

// Issuer is the configured issuer.
func (v *Verifier) Issuer() string { return v.cfg.Issuer }

// Verify checks signature, algorithm, iss, aud, exp, iat and nbf of raw and
// decodes its claims into claims (jwt.MapClaims, or a struct embedding
// jwt.RegisteredClaims). Every failure wraps ErrInvalidToken.
func (v *Verifier) Verify(ctx context.Context, raw string, claims jwt.Claims) error {
	if len(raw) > v.cfg.MaxTokenBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidToken, len(raw), v.cfg.MaxTokenBytes)
	}
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return v.cfg.Keys.Key(ctx, kid, t.Method.Alg())
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return nil
}
