package server

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/owner"
)

// Bounds of a WebFinger query: a resource is an address of at most
// uma.MaxAddressLen characters, a client filters by a few relations.
const (
	maxWebFingerQuery = 2048
	maxWebFingerRels  = 8
	maxRelLen         = 256
)

// webfinger answers RFC 7033 for this server's own users (issue 14):
// acct:{owner}@{Domain}, where owner is an existing user of the realm
// (the same look-up as a push: protection.Owner), gets a JRD with the
// Incoming URL (uma.RelIncoming) and the authorization server protecting it
// (uma.RelUMAAS, the challenge's as_uri); rel parameters filter the links.
// Anything else is 404 without a JRD: another domain, another scheme, a
// name outside the owner-name rules, an unknown user. A server without a
// Domain answers nothing (404). Every answer carries
// Access-Control-Allow-Origin: * (RFC 7033 section 5).
func (s *Server) webfinger(c *gin.Context) {
	c.Header("Access-Control-Allow-Origin", "*")
	if s.cfg.Domain == "" {
		s.fail(c, uma.NewError(http.StatusNotFound, uma.ErrNotFound, "this server answers no WebFinger queries"), "webfinger_off")
		return
	}
	if len(c.Request.URL.RawQuery) > maxWebFingerQuery {
		s.fail(c, uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "query longer than %d bytes", maxWebFingerQuery), "webfinger_query")
		return
	}
	q, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		s.fail(c, uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "malformed query"), "webfinger_query")
		return
	}
	resources := q[uma.WebFingerResourceParam]
	if len(resources) != 1 || resources[0] == "" {
		s.fail(c, uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "exactly one resource parameter is required"), "webfinger_query")
		return
	}
	rels := q[uma.WebFingerRelParam]
	if len(rels) > maxWebFingerRels || slices.ContainsFunc(rels, func(r string) bool { return len(r) > maxRelLen }) {
		s.fail(c, uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "at most %d rel parameters of at most %d bytes", maxWebFingerRels, maxRelLen), "webfinger_query")
		return
	}
	addr, err := uma.ParseAddress(resources[0])
	if err != nil || !isAcct(resources[0]) || addr.Domain != s.cfg.Domain || !owner.Valid(addr.Local) {
		s.fail(c, uma.NewError(http.StatusNotFound, uma.ErrNotFound, "no such account at %s", s.cfg.Domain), "webfinger_unknown")
		return
	}
	if _, err := s.cfg.Protection.Owner(c.Request.Context(), addr.Local); err != nil {
		if s.cfg.IsUnknownOwner(err) {
			s.fail(c, uma.NewError(http.StatusNotFound, uma.ErrNotFound, "no such account at %s", s.cfg.Domain), "webfinger_unknown")
			return
		}
		s.cfg.Logger.Error("WebFinger: owner look-up failed", "owner", addr.Local, "err", err)
		s.fail(c, uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "the account cannot be looked up now"), "as_unreachable")
		return
	}
	incoming, err := s.IncomingURL(addr.Local)
	if err != nil {
		s.fail(c, uma.NewError(http.StatusNotFound, uma.ErrNotFound, "no such account at %s", s.cfg.Domain), "webfinger_unknown")
		return
	}
	jrd := uma.JRD{Subject: addr.AcctURI(), Links: []uma.JRDLink{}}
	for _, l := range []uma.JRDLink{{Rel: uma.RelIncoming, Href: incoming}, {Rel: uma.RelUMAAS, Href: s.cfg.ASURI}} {
		if len(rels) == 0 || slices.Contains(rels, l.Rel) {
			jrd.Links = append(jrd.Links, l)
		}
	}
	// The links change only when the operator moves a server: a minute of
	// caching spares the look-up for a burst of pushes to one person.
	c.Header("Cache-Control", "max-age=60")
	c.Header("Content-Type", uma.ContentTypeJRD)
	c.JSON(http.StatusOK, jrd)
}

// isAcct: the resource is an acct: URI (RFC 7565); a bare address or
// another scheme names nothing here.
func isAcct(resource string) bool {
	return len(resource) > 5 && strings.EqualFold(resource[:5], "acct:")
}
