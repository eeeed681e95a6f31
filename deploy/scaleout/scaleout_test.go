// Package scaleout tests the Resource Server scaled out as compose.scale.yaml
// runs it: several processes (the built binary, started as devstack starts
// it) on one PostgreSQL database, behind one realm of a real Keycloak. It
// needs a PostgreSQL server: UMAWIDE_TEST_DATABASE_URL (a role that may
// create databases; `make test` starts a private one, internal/pgtest). Each
// run gets its own database, dropped at the end.
package scaleout

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/umawide/umawide/internal/grantmac"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/pgtest"
	"github.com/umawide/umawide/internal/stack"
	"github.com/umawide/umawide/internal/testhttp"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

const (
	owner         = "bob"
	bobPassword   = "bob-password"
	rqpSecret     = "rqp-client-secret"
	replicas      = 2
	pushesEach    = 50 // stored through each replica
	concurrency   = 8
	replayChecks  = 10 // RPTs sent to both replicas at once
	sequentialRPT = 5  // RPTs used at one replica, then tried at the other
)

func TestMain(m *testing.M) {
	if os.Getenv(pgtest.DatabaseEnv) == "" {
		// Every test skips: start no Keycloak for nothing.
		os.Exit(m.Run())
	}
	kctest.Main(m)
}

func skipWithoutDatabase(t *testing.T) string {
	base := os.Getenv(pgtest.DatabaseEnv)
	if base == "" {
		t.Skipf("Resource Server replicas on PostgreSQL NOT tested: set %s (e.g. postgres://umawide:umawide@127.0.0.1:5432/umawide_test?sslmode=disable, a role that may CREATE DATABASE)", pgtest.DatabaseEnv)
	}
	return base
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// rsSecret is the resource-server client's secret in the realm copy: the
// key of grant_mac.
const rsSecret = "resource-server-secret"

type env struct {
	t      *testing.T
	ctx    context.Context
	issuer string
	rs     []*stack.Service
	client *http.Client
}

// start imports a stock copy of realm bar and starts the replicas on a
// fresh database.
func start(t *testing.T, base string) (*env, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	kc := kctest.Keycloak(t)
	realm := kctest.ImportStockBar(t, kc)
	dbURL := pgtest.FreshDatabase(t, base, "umawide_scaleout_")
	dir := t.TempDir()
	bins, err := stack.Build(ctx, dir, "resource-server")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, issuer: kc.IssuerURL(realm), client: &http.Client{Timeout: time.Minute}}
	// The replicas start together, as compose starts them: both create
	// the schema (serialised by an advisory lock) on the empty database.
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	e.rs = make([]*stack.Service, replicas)
	// Replicas behind one address share one public URL: the Incoming URL in
	// their tickets and in the RPTs they accept.
	var publicURL string
	for i := range replicas {
		port, err := launcher.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if publicURL == "" {
			publicURL = fmt.Sprintf("http://127.0.0.1:%d", port)
		}
		spec := stack.ResourceServer{
			Binary: bins["resource-server"], Listen: fmt.Sprintf("127.0.0.1:%d", port), PublicURL: publicURL,
			KeycloakURL: kc.BaseURL, Realm: realm, DatabaseURL: dbURL,
			LogPath: filepath.Join(dir, fmt.Sprintf("resource-server-%d.log", i)),
		}.Spec()
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.rs[i], errs[i] = stack.Start(ctx, spec)
		}()
	}
	wg.Wait()
	for i, s := range e.rs {
		if s != nil {
			t.Cleanup(func() {
				if err := s.Stop(context.Background()); err != nil {
					t.Errorf("stop replica %d: %v", i, err)
				}
			})
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return e, dbURL
}

func (e *env) post(base, token string, body []byte) (testhttp.Response, error) {
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, base+uma.IncomingPath(owner), bytes.NewReader(body))
	if err != nil {
		return testhttp.Response{}, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return testhttp.DoErr(e.client, req)
}

// rpt runs seed steps 1-2 at one replica and step 7 at Keycloak (stock
// policy, pushed claims bound to body): an RPT good for one message.
func (e *env) rpt(challengeAt string, body []byte) (string, error) {
	r, err := e.post(challengeAt, "", body)
	if err != nil {
		return "", err
	}
	if r.Status != http.StatusUnauthorized {
		return "", fmt.Errorf("POST without token: %d %s", r.Status, r.Body)
	}
	ch, err := uma.ParseChallenge(r.Header)
	if err != nil {
		return "", fmt.Errorf("challenge: %w", err)
	}
	if ch.ASURI != e.issuer {
		return "", fmt.Errorf("as_uri %s, want %s", ch.ASURI, e.issuer)
	}
	// The stock policy copies pushed claims into the RPT: push what the
	// claims-token policy would write (the Resource Server checks all of it).
	tc, err := uma.UnverifiedTicketClaims(ch.Ticket)
	if err != nil || len(tc.IncomingURIs) != 1 || len(tc.ResourceIDs) != 1 {
		return "", fmt.Errorf("ticket %+v: %v", tc, err)
	}
	grantID := make([]byte, 16)
	_, _ = rand.Read(grantID)
	claims := uma.PushedClaims(grantmac.Attest([]byte(rsSecret), tc.ResourceIDs[0], map[string][]string{
		uma.ClaimContentSHA256: {hexSum(body)},
		uma.ClaimContentLength: {fmt.Sprint(len(body))},
		uma.ClaimSenderEmail:   {"alice@foo.example"},
		uma.ClaimSenderIss:     {"http://127.0.0.1:8081"},
		uma.ClaimSenderSub:     {"a11ce"},
		uma.ClaimIncomingURI:   {tc.IncomingURIs[0]},
		uma.ClaimGrantID:       {base64.RawURLEncoding.EncodeToString(grantID)},
	}))
	ct, err := claims.Encode()
	if err != nil {
		return "", err
	}
	tok, err := kctest.PostToken(e.ctx, e.issuer, "rqp-client", rqpSecret, url.Values{
		uma.FormGrantType:        {uma.GrantTypeUMATicket},
		uma.FormTicket:           {ch.Ticket},
		uma.FormSubmitRequest:    {"false"},
		uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT},
		uma.FormClaimToken:       {ct},
	})
	if err != nil {
		return "", fmt.Errorf("uma-ticket grant: %w", err)
	}
	return tok.AccessToken, nil
}

// store posts body with its RPT; it must be stored (201).
func (e *env) store(postAt, token string, body []byte) (uma.Message, error) {
	r, err := e.post(postAt, token, body)
	if err != nil {
		return uma.Message{}, err
	}
	if r.Status != http.StatusCreated {
		return uma.Message{}, fmt.Errorf("POST with RPT: %d %s", r.Status, r.Body)
	}
	var m uma.Message
	if err := json.Unmarshal(r.Body, &m); err != nil || m.ID == "" {
		return uma.Message{}, fmt.Errorf("201 body %s: %v", r.Body, err)
	}
	if m.SHA256 != hexSum(body) {
		return uma.Message{}, fmt.Errorf("stored sha256 %s, sent %s", m.SHA256, hexSum(body))
	}
	return m, nil
}

// dbMessages reads what the database holds for the owner: id -> sha256.
func dbMessages(t *testing.T, dbURL string) (map[string]string, int, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, sha256 FROM messages WHERE owner = $1`, owner)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	n := 0
	for rows.Next() {
		var id, sum string
		if err := rows.Scan(&id, &sum); err != nil {
			t.Fatal(err)
		}
		out[id] = sum
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var used, distinctSums int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM used_grants`).Scan(&used); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT sha256) FROM messages WHERE owner = $1`, owner).Scan(&distinctSums); err != nil {
		t.Fatal(err)
	}
	if n != len(out) {
		t.Fatalf("%d rows but %d distinct ids", n, len(out))
	}
	return out, used, distinctSums
}

// TestReplicasShareOneDatabase: two Resource Server processes on one
// PostgreSQL database take 2 x 50 concurrent pushes, each with its own
// content-bound RPT from Keycloak, the ticket asked of one replica and the
// message posted to the other. Every message is stored exactly once, both
// replicas list the same Incoming, and an RPT used at one replica is
// refused at the other, also when both get it at the same moment.
func TestReplicasShareOneDatabase(t *testing.T) {
	base := skipWithoutDatabase(t)
	e, dbURL := start(t, base)
	run := kctest.RandomHex(4)

	// 2 x 50 pushes at concurrency 8.
	total := replicas * pushesEach
	bodies := make([][]byte, total)
	results := make([]uma.Message, total)
	errs := make([]error, total)
	jobs := make(chan int)
	var wg sync.WaitGroup
	began := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				bodies[i] = fmt.Appendf(nil, "message %d of run %s: %s\n", i, run, kctest.RandomHex(16))
				postAt := e.rs[i%replicas].URL
				challengeAt := e.rs[(i+1)%replicas].URL
				tok, err := e.rpt(challengeAt, bodies[i])
				if err == nil {
					results[i], err = e.store(postAt, tok, bodies[i])
				}
				errs[i] = err
			}
		}()
	}
	for i := range total {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("%d pushes through %d replicas at concurrency %d: %v", total, replicas, concurrency, time.Since(began).Round(time.Millisecond))
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("push %d (to replica %d): %v", i, i%replicas, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d pushes failed", failed, total)
	}

	// Exactly the 100 messages, each once, in the database.
	ids := map[string]string{}
	for i, r := range results {
		if _, dup := ids[r.ID]; dup {
			t.Fatalf("id %s answered twice", r.ID)
		}
		ids[r.ID] = hexSum(bodies[i])
	}
	inDB, used, distinct := dbMessages(t, dbURL)
	if len(inDB) != total || distinct != total || used != total {
		t.Fatalf("database holds %d messages (%d distinct contents) and %d used RPTs, want %d each", len(inDB), distinct, used, total)
	}
	for id, sum := range ids {
		if inDB[id] != sum {
			t.Fatalf("message %s: database has sha256 %q, want %q", id, inDB[id], sum)
		}
	}

	// Bob sees the same Incoming through either replica.
	port, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	login, err := kctest.LoginForTokens(e.ctx, kctest.CodeFlow{
		Issuer: e.issuer, ClientID: "incoming-app",
		RedirectURI: fmt.Sprintf("http://127.0.0.1:%d/", port), Scope: "openid",
	}, owner, bobPassword)
	if err != nil {
		t.Fatalf("bob's login: %v", err)
	}
	for i, s := range e.rs {
		listed := e.list(t, s.URL, login.AccessToken)
		if len(listed) != total {
			t.Fatalf("replica %d lists %d messages, want %d", i, len(listed), total)
		}
		for _, id := range listed {
			if _, ok := ids[id]; !ok {
				t.Fatalf("replica %d lists %s, which no push stored", i, id)
			}
		}
	}

	// An RPT used at one replica is refused at the other.
	for i := range sequentialRPT {
		body := fmt.Appendf(nil, "used once, run %s, %d\n", run, i)
		tok, err := e.rpt(e.rs[0].URL, body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store(e.rs[0].URL, tok, body); err != nil {
			t.Fatal(err)
		}
		r, err := e.post(e.rs[1].URL, tok, body)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusUnauthorized || uma.ParseError(r.Status, r.Body).Code != uma.ErrInvalidToken {
			t.Fatalf("RPT used at replica 0, again at replica 1: %d %s, want 401 invalid_token", r.Status, r.Body)
		}
	}

	// The same RPT at both replicas at the same moment: one message.
	for i := range replayChecks {
		body := fmt.Appendf(nil, "raced, run %s, %d\n", run, i)
		tok, err := e.rpt(e.rs[i%replicas].URL, body)
		if err != nil {
			t.Fatal(err)
		}
		var (
			rwg      sync.WaitGroup
			startGun = make(chan struct{})
			statuses = make([]int, replicas)
			rerrs    = make([]error, replicas)
		)
		for j, s := range e.rs {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				<-startGun
				r, err := e.post(s.URL, tok, body)
				statuses[j], rerrs[j] = r.Status, err
			}()
		}
		close(startGun)
		rwg.Wait()
		if err := errors.Join(rerrs...); err != nil {
			t.Fatal(err)
		}
		created, refused := 0, 0
		for _, st := range statuses {
			switch st {
			case http.StatusCreated:
				created++
			case http.StatusUnauthorized:
				refused++
			}
		}
		if created != 1 || refused != replicas-1 {
			t.Fatalf("one RPT at %d replicas at once: statuses %v, want one 201 and the rest 401", replicas, statuses)
		}
	}

	want := total + sequentialRPT + replayChecks
	if inDB, used, distinct = dbMessages(t, dbURL); len(inDB) != want || used != want || distinct != want {
		t.Fatalf("after the replays the database holds %d messages (%d distinct) and %d used RPTs, want %d", len(inDB), distinct, used, want)
	}
}

// list is Bob's listing of his Incoming at one replica (ids, newest first).
func (e *env) list(t *testing.T, base, token string) []string {
	t.Helper()
	var out uma.MessageList
	testhttp.GetJSON(t, e.ctx, base+uma.IncomingPath(owner)+"/messages?limit=1000", token, &out)
	var ids []string
	for _, m := range out.Messages {
		ids = append(ids, m.ID)
	}
	return ids
}
