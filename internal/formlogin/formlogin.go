// Package formlogin logs a person in without a browser by driving a Keycloak
// username/password login page over HTTP, the way a browser would: for
// demos, scripts and tests against a Keycloak whose login flow is the plain
// form (no second factor, no required actions). It is an rqp.Login OpenURL
// hook: it opens the authorization URL, submits the form, and delivers the
// resulting redirect to the client's own loopback receiver.
package formlogin

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

const maxPage = 1 << 20

var (
	loginForm  = regexp.MustCompile(`(?s)<form[^>]*\bid="kc-form-login"[^>]*>`)
	formAction = regexp.MustCompile(`\baction="([^"]+)"`)
	inputError = regexp.MustCompile(`(?s)id="input-error[^"]*"[^>]*>\s*(.*?)\s*<`)
)

// ErrLogin wraps every failure of the scripted login.
var ErrLogin = errors.New("scripted login failed")

// OpenURL returns an OpenURL hook that logs username in with password.
// hc nil means a client with a 30-second timeout; its redirect policy and
// cookie jar are replaced.
func OpenURL(username, password string, hc *http.Client) func(ctx context.Context, authURL string) error {
	return func(ctx context.Context, authURL string) error {
		return login(ctx, hc, authURL, username, password)
	}
}

func login(ctx context.Context, base *http.Client, authURL, username, password string) error {
	loc, err := Submit(ctx, base, authURL, username, password)
	if err != nil {
		return err
	}
	c := http.Client{Timeout: 30 * time.Second}
	if base != nil {
		c = *base
	}
	c.Jar = nil
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return deliver(ctx, &c, loc)
}

// Submit opens authURL (an authorization request), submits username and
// password on Keycloak's login form and returns the redirect back to the
// client (its redirect_uri with code and state, or an error) without
// following it. hc nil means a client with a 30-second timeout; its redirect
// policy and cookie jar are replaced.
func Submit(ctx context.Context, base *http.Client, authURL, username, password string) (string, error) {
	au, err := url.Parse(authURL)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrLogin, err)
	}
	redirectURI := au.Query().Get("redirect_uri")
	if redirectURI == "" {
		return "", fmt.Errorf("%w: the authorization URL has no redirect_uri", ErrLogin)
	}
	jar, _ := cookiejar.New(nil)
	c := http.Client{Timeout: 30 * time.Second}
	if base != nil {
		c = *base
	}
	c.Jar = jar
	// Follow redirects among the login server's pages; stop at the redirect
	// back to the client.
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		if strings.HasPrefix(req.URL.String(), redirectURI) || req.URL.Host != au.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}

	resp, page, err := get(ctx, &c, authURL)
	if err != nil {
		return "", err
	}
	if loc := resp.Header.Get("Location"); isRedirect(resp.StatusCode) && strings.HasPrefix(loc, redirectURI) {
		// Already logged in (a session cookie): no form to fill.
		return loc, nil
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: GET of the login page: %s", ErrLogin, resp.Status)
	}
	form := loginForm.Find(page)
	if form == nil {
		return "", fmt.Errorf("%w: no Keycloak login form (id=kc-form-login) on the login page", ErrLogin)
	}
	m := formAction.FindSubmatch(form)
	if m == nil {
		return "", fmt.Errorf("%w: the login form has no action", ErrLogin)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
	if err != nil || action.Host != au.Host {
		return "", fmt.Errorf("%w: the login form posts elsewhere (%v)", ErrLogin, err)
	}
	vals := url.Values{"username": {username}, "password": {password}, "credentialId": {""}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(vals.Encode()))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrLogin, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: submitting the login form: %v", ErrLogin, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxPage))
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if !isRedirect(resp.StatusCode) || !strings.HasPrefix(loc, redirectURI) {
		msg := "no redirect back to the client"
		if e := inputError.FindSubmatch(body); e != nil {
			msg = strings.TrimSpace(html.UnescapeString(string(e[1])))
		}
		return "", fmt.Errorf("%w: %s as %s: %s", ErrLogin, resp.Status, username, msg)
	}
	return loc, nil
}

// deliver is the browser following the redirect to the loopback receiver.
func deliver(ctx context.Context, c *http.Client, loc string) error {
	resp, _, err := get(ctx, c, loc)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: the client's receiver answered %s", ErrLogin, resp.Status)
	}
	return nil
}

func get(ctx context.Context, c *http.Client, u string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrLogin, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrLogin, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrLogin, err)
	}
	return resp, body, nil
}

func isRedirect(status int) bool {
	return status == http.StatusFound || status == http.StatusSeeOther || status == http.StatusMovedPermanently || status == http.StatusTemporaryRedirect
}
