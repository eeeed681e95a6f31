package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/owner"
	"github.com/umawide/umawide/resource-server/internal/protection"
	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/store"
)

// unreachableWarning is UMA 2.0 Grant 3.2.2's header value.
const unreachableWarning = `199 - "UMA Authorization Server Unreachable"`

// PrecheckBytes: the store is asked before the body is read (does the
// message fit the owner's quota, has the RPT's grant stored a message
// already) only when the body is larger than this (or of unknown length).
// A smaller body is read first and the insert, which checks both in the
// same transaction as the message (the quota against its owner's usage,
// the grant_id by recording it), refuses it with the same answer. The
// look-ups save reading a large body for nothing, but cost two database
// reads per message (each a read transaction on the WAL), which for small
// ones is more than reading them.
const PrecheckBytes = 64 << 10

// messageJSON shows m as the receipt of seed step 10 and the entries of the
// message list (plus file_name and sender_sub where known); owner is the
// username it was posted to.
func messageJSON(m store.Message) uma.Message {
	return uma.Message{
		ID: m.ID, Owner: m.Owner, SenderEmail: m.SenderEmail, SenderIss: m.SenderIss, SenderSub: m.SenderSub,
		ContentType: m.ContentType, FileName: m.FileName, Size: m.Size, SHA256: m.SHA256,
		ReceivedAt: m.ReceivedAt.UTC().Format(time.RFC3339Nano),
	}
}

func (s *Server) ownerParam(c *gin.Context) (string, bool) {
	o := c.Param("owner")
	if !owner.Valid(o) {
		s.fail(c, uma.NewError(http.StatusNotFound, uma.ErrNotFound, "no such Incoming (%s)", owner.Rules), "owner_syntax")
		return "", false
	}
	return o, true
}

// postMessage is seed steps 1-2 (no RPT: 401 with a ticket) and 9-10 (RPT:
// store, 201). Every refusal happens before the body is read, except those
// that need the body (a body longer than the bound content_length, the
// content binding); nothing is stored for a refused request. The body
// streams into the store while it is hashed and counted (store.Body), so
// memory stays flat whatever its size; only when it matches the RPT's
// binding does Insert make it visible and spend the grant, in one step.
//
// An RPT stores a message only when its permission for this owner's
// Incoming names a verified sender, binds one content, names this Incoming's
// URL and one grant that has not stored a message yet (issue 12): else 403
// insufficient_scope with the reason (rpt.Reason*) in error_description, or
// 401 invalid_token with a fresh ticket for a spent grant (rpt_replayed).
func (s *Server) postMessage(c *gin.Context) {
	o, ok := s.ownerParam(c)
	if !ok {
		return
	}
	r := c.Request
	if r.ContentLength > s.cfg.MaxBody {
		s.fail(c, uma.NewError(http.StatusRequestEntityTooLarge, uma.ErrTooLarge, "message larger than %d bytes", s.cfg.MaxBody), "too_large")
		return
	}
	incomingURL, err := s.IncomingURL(o)
	if err != nil {
		// CheckPublicURL and the owner-name rules make this unreachable.
		s.cfg.Logger.Error("no Incoming URL", "owner", o, "err", err)
		s.fail(c, uma.NewError(http.StatusInternalServerError, uma.ErrServerError, "internal error"), "incoming_url")
		return
	}
	tok, err := uma.BearerToken(r)
	if be := (*uma.BearerError)(nil); errors.As(err, &be) {
		// Malformed credentials, and a malformed request (two headers), are
		// answered invalid_token with a ticket.
		if be.Missing() {
			s.challenge(c, o, incomingURL, "", "an RPT is required: ask as_uri for one with this ticket", "no_token")
		} else {
			s.challenge(c, o, incomingURL, uma.ErrInvalidToken, be.Description, uma.ErrInvalidToken)
		}
		return
	}
	owner, err := s.cfg.Protection.Owner(c.Request.Context(), o)
	if err != nil {
		s.protectionFailed(c, o, err)
		return
	}
	grant, err := s.cfg.Verifier.Authorize(c.Request.Context(), tok, owner.ResourceID, incomingURL)
	var refused *rpt.RefusedError
	switch {
	case errors.As(err, &refused):
		s.cfg.Logger.Warn("RPT refused: it does not allow storing a message", "owner", o, "reason", refused.Reason, "detail", refused.Detail)
		s.fail(c, uma.NewError(http.StatusForbidden, uma.ErrInsufficientScope,
			"the RPT's permission does not allow storing a message in this Incoming (%s)", refused.Reason), refused.Reason)
		return
	case errors.Is(err, rpt.ErrInsufficient):
		s.challenge(c, o, incomingURL, uma.ErrInsufficientScope, "the RPT has no permission to create in this Incoming", uma.ErrInsufficientScope)
		return
	case err != nil:
		s.cfg.Logger.Info("RPT refused", "owner", o, "err", err)
		s.challenge(c, o, incomingURL, uma.ErrInvalidToken, "the RPT is invalid or expired", uma.ErrInvalidToken)
		return
	}
	b := grant.Content
	if r.ContentLength >= 0 && r.ContentLength != b.Length {
		s.mismatch(c, "Content-Length %d differs from the content_length %d bound to the RPT", r.ContentLength, b.Length)
		return
	}
	if b.Length > s.cfg.MaxBody {
		s.fail(c, uma.NewError(http.StatusRequestEntityTooLarge, uma.ErrTooLarge, "message larger than %d bytes", s.cfg.MaxBody), "too_large")
		return
	}
	if r.ContentLength < 0 || r.ContentLength > PrecheckBytes {
		// Fast refusals before a large body is read; Insert checks both
		// again in its transaction, against pushes running at the same
		// time.
		if s.cfg.Quota > 0 {
			usage, err := s.cfg.Store.Usage(c.Request.Context(), owner.UserID)
			if err != nil {
				s.storeFailed(c, err)
				return
			}
			if usage+b.Length > s.cfg.Quota {
				s.overQuota(c, o, b.Length)
				return
			}
		}
		used, err := s.cfg.Store.GrantUsed(c.Request.Context(), grant.GrantID)
		if err != nil {
			s.storeFailed(c, err)
			return
		}
		if used {
			s.replayed(c, o, incomingURL, grant)
			return
		}
	}
	contentType, fileName, e := s.metadata(r, b)
	if e != nil {
		s.fail(c, e, "metadata")
		return
	}

	// Only now is the body read (and a client that sent Expect: 100-continue
	// is told to send it). A refusal discards what was written before it
	// answers, so that a client sees nothing left once it has the answer
	// (and an honest retry finds the Incoming as before); the deferred
	// Discard covers the rest (Insert discards on failure itself).
	body := s.cfg.Store.NewBody(c.Request.Context())
	defer s.discard(body)
	if e := s.receive(c, r, body, b.Length); e != nil {
		s.discard(body)
		s.fail(c, e, "body")
		return
	}
	if body.Size() != b.Length {
		s.discard(body)
		s.mismatch(c, "the body has %d bytes, the RPT is bound to content_length %d", body.Size(), b.Length)
		return
	}
	digest := body.SHA256()
	if b.SHA256 != digest {
		s.discard(body)
		s.mismatch(c, "the body's SHA-256 differs from the content_sha256 bound to the RPT")
		return
	}
	m := store.Message{
		ID: store.NewID(), OwnerID: owner.UserID, Owner: o,
		SenderEmail: grant.Sender.Email, SenderIss: grant.Sender.Iss, SenderSub: grant.Sender.Sub,
		ContentType: contentType, FileName: fileName,
		Size: body.Size(), SHA256: digest, ReceivedAt: s.cfg.Now().UTC().Truncate(time.Microsecond),
	}
	used := &store.UsedGrant{GrantID: grant.GrantID, ExpiresAt: grant.ExpiresAt}
	if err := s.cfg.Store.Insert(c.Request.Context(), m, body, used, s.cfg.Quota); err != nil {
		switch {
		case errors.Is(err, store.ErrReplay):
			s.replayed(c, o, incomingURL, grant)
		case errors.Is(err, store.ErrQuota):
			s.overQuota(c, o, m.Size)
		default:
			s.storeFailed(c, err)
		}
		return
	}
	s.metrics.stored.Inc()
	s.metrics.bytes.Add(float64(m.Size))
	s.cfg.Logger.Info("message stored", "owner", o, "owner_id", owner.UserID, "id", m.ID, "size", m.Size,
		"sender_email", m.SenderEmail, "grant_id", grant.GrantID)
	c.Header("Location", "/incoming/"+o+"/messages/"+m.ID)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, messageJSON(m))
}

// replayed: the grant already stored a message (the same RPT again, or
// another RPT Keycloak issued for the same grant, e.g. by a refresh).
func (s *Server) replayed(c *gin.Context, o, incomingURL string, g rpt.Grant) {
	s.cfg.Logger.Warn("RPT refused: its grant already stored a message", "owner", o, "reason", "rpt_replayed", "grant_id", g.GrantID, "jti", g.JTI)
	s.challenge(c, o, incomingURL, uma.ErrInvalidToken, "the RPT's grant was already used for a message (rpt_replayed)", "rpt_replayed")
}

// challenge answers 401 with a fresh permission ticket (UMA Grant 3.2.1)
// carrying incoming_uri; errCode, when set, is added as the RFC 6750 error
// attribute; reason labels the refusal in the metrics.
func (s *Server) challenge(c *gin.Context, o, incomingURL, errCode, desc, reason string) {
	ticket, _, err := s.cfg.Protection.Ticket(c.Request.Context(), o, incomingURL)
	if err != nil {
		s.protectionFailed(c, o, err)
		return
	}
	h := uma.Challenge{Realm: s.cfg.Realm, ASURI: s.cfg.ASURI, Ticket: ticket}.String()
	code := errCode
	if code != "" {
		h += `, error="` + code + `"`
	} else {
		code = "unauthorized"
	}
	c.Header("WWW-Authenticate", h)
	s.metrics.tickets.Inc()
	s.fail(c, uma.NewError(http.StatusUnauthorized, code, "%s", desc), reason)
}

func (s *Server) protectionFailed(c *gin.Context, o string, err error) {
	if s.cfg.IsUnknownOwner(err) {
		s.fail(c, uma.NewError(http.StatusNotFound, uma.ErrNotFound, "no such Incoming"), "unknown_owner")
		return
	}
	if c.Request.Context().Err() != nil {
		// The client went away (or half-closed its connection, which Go's
		// server takes as the same): the check did not finish, and an
		// unfinished check must never read as a success (gin would answer
		// 200 for a handler that writes nothing).
		s.fail(c, uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "the request was canceled before the owner could be checked"), "canceled")
		return
	}
	s.cfg.Logger.Error("no permission ticket from the authorization server", "owner", o, "err", err)
	c.Header("Warning", unreachableWarning)
	s.fail(c, uma.NewError(http.StatusForbidden, uma.ErrUnavailable, "the UMA authorization server cannot be reached"), "as_unreachable")
}

// overQuota: the owner's stored bytes and this message would exceed the
// quota. 507 (RFC 4918): the request is fine, the storage is not; nothing is
// stored and the RPT is not spent.
func (s *Server) overQuota(c *gin.Context, o string, size int64) {
	s.cfg.Logger.Warn("message refused: the owner's storage quota is exhausted", "owner", o, "size", size, "quota", s.cfg.Quota, "reason", ReasonStorageQuota)
	s.fail(c, uma.NewError(http.StatusInsufficientStorage, uma.ErrInsufficientStorage,
		"the Incoming's storage quota of %d bytes would be exceeded (%s)", s.cfg.Quota, ReasonStorageQuota), ReasonStorageQuota)
}

// ReasonStorageQuota names the 507 refusal in its error_description and the
// refusal metrics.
const ReasonStorageQuota = "storage_quota_exceeded"

func (s *Server) storeFailed(c *gin.Context, err error) {
	s.cfg.Logger.Error("store", "err", err)
	s.fail(c, uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "the message store is unavailable"), "store")
}

// mismatch: the body is not the content the RPT was granted for. 403: the
// token is valid but does not cover this request; nothing is stored and the
// RPT is not spent.
func (s *Server) mismatch(c *gin.Context, format string, args ...any) {
	s.fail(c, uma.NewError(http.StatusForbidden, uma.ErrInsufficientScope, format, args...), "content_mismatch")
}

// metadata decides the stored content type and file name: the request's
// Content-Type and Content-Disposition filename, else the RPT's bound
// content_type and file_name; where both are present they must agree.
func (s *Server) metadata(r *http.Request, b rpt.Binding) (contentType, fileName string, e *uma.Error) {
	contentType = "application/octet-stream"
	if ct := r.Header.Get("Content-Type"); ct != "" || b.ContentType != "" {
		var bound string
		if b.ContentType != "" {
			mt, _, err := mime.ParseMediaType(b.ContentType)
			if err != nil {
				return "", "", uma.NewError(http.StatusForbidden, uma.ErrInsufficientScope, "the RPT's content_type is not a media type")
			}
			bound = mt
			contentType = b.ContentType
		}
		if ct != "" {
			if len(ct) > store.MaxContentTypeLen {
				return "", "", uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "Content-Type longer than %d bytes", store.MaxContentTypeLen)
			}
			mt, params, err := mime.ParseMediaType(ct)
			if err != nil {
				return "", "", uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "Content-Type is not a media type")
			}
			if bound != "" && mt != bound {
				return "", "", uma.NewError(http.StatusForbidden, uma.ErrInsufficientScope, "Content-Type %s differs from the content_type %s bound to the RPT", mt, bound)
			}
			contentType = mime.FormatMediaType(mt, params)
			if contentType == "" || len(contentType) > store.MaxContentTypeLen {
				return "", "", uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "Content-Type cannot be stored")
			}
		}
	}
	if cd := r.Header.Get("Content-Disposition"); cd != "" {
		if len(cd) > 1024 {
			return "", "", uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "Content-Disposition too long")
		}
		_, params, err := mime.ParseMediaType(cd)
		if err != nil {
			return "", "", uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "Content-Disposition is malformed")
		}
		fileName = params["filename"]
	}
	if b.FileName != "" {
		if fileName != "" && fileName != b.FileName {
			return "", "", uma.NewError(http.StatusForbidden, uma.ErrInsufficientScope, "file name differs from the file_name bound to the RPT")
		}
		fileName = b.FileName
	}
	if fileName != "" {
		var ok bool
		if fileName, ok = SafeFileName(fileName); !ok {
			return "", "", uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "file name is not acceptable")
		}
	}
	return contentType, fileName, nil
}

// SafeFileName keeps the last path element of name; it refuses names that
// are empty, "." or "..", longer than 255 bytes, not UTF-8 or with control
// characters.
func SafeFileName(name string) (string, bool) {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	if name == "" || name == "." || name == ".." || len(name) > store.MaxFileNameLen || !utf8.ValidString(name) {
		return "", false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return "", false
		}
	}
	return name, true
}

// discard drops a body not stored (nothing once it was inserted).
func (s *Server) discard(b *store.Body) {
	if err := b.Discard(); err != nil {
		s.cfg.Logger.Error("removing a body not stored (the store's clean-up at the next start removes it)", "err", err)
	}
}

// copyBufferSize is the chunk a body moves in until it spills, and all
// along to a store that does not lend its buffers (PostgreSQL's large
// objects): large enough that a multi-gigabyte body costs few calls into
// the store, small enough to be nothing in memory. Once a body spilled to a
// SQLite content file, reads go straight into that file's 1 MiB write
// buffers (store.Body.Receive), whatever this size.
const copyBufferSize = 256 << 10

// receive streams the request body into body, reading at most bound+1
// bytes: one byte past the bound content_length already fails the binding,
// so the rest is never read (nor stored). A body beyond the bound answers
// 413 when the bound is the limit itself (a chunked body over -max-body),
// else it is left to the caller's length check (403 content_mismatch).
func (s *Server) receive(c *gin.Context, r *http.Request, body *store.Body, bound int64) *uma.Error {
	rc := http.NewResponseController(c.Writer)
	buf := make([]byte, min(bound+1, copyBufferSize))
	src := s.progress(io.LimitReader(r.Body, bound+1), rc)
	if _, err := body.Receive(src, buf); err != nil {
		if src.err == nil {
			// The store failed, not the client.
			s.cfg.Logger.Error("storing a body", "err", err)
			return uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "the message store is unavailable")
		}
		return uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "reading the body failed")
	}
	if body.Size() > bound && bound >= s.cfg.MaxBody {
		return uma.NewError(http.StatusRequestEntityTooLarge, uma.ErrTooLarge, "message larger than %d bytes", s.cfg.MaxBody)
	}
	return nil
}

// progressReader reads a body and, as long as bytes keep coming, moves the
// connection's deadlines on: the server's Read and Write timeouts then bound
// the time without progress, not the time a body of many gigabytes takes.
type progressReader struct {
	r      io.Reader
	extend func()
	// every is how often the deadlines move on: well within the timeouts.
	every time.Duration
	last  time.Time
	err   error // the read error other than io.EOF, if any
}

func (p *progressReader) Read(b []byte) (int, error) {
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		p.extend()
	}
	n, err := p.r.Read(b)
	if err != nil && err != io.EOF {
		p.err = err
	}
	return n, err
}

// progress wraps r in a progressReader that gives the connection another
// Read and Write timeout from now, a few times per timeout (nothing where
// the writer cannot, as in handler tests).
func (s *Server) progress(r io.Reader, rc *http.ResponseController) *progressReader {
	t := s.cfg.Timeouts
	return &progressReader{r: r, every: min(time.Second, t.Read/4, t.Write/4), extend: func() {
		now := time.Now()
		_ = rc.SetReadDeadline(now.Add(t.Read))
		_ = rc.SetWriteDeadline(now.Add(t.Write))
	}}
}

// --- reading ---

// reader checks the caller is the owner, with a token of an allowed client:
// the token's sub must be the owner's user id (not his username: a user
// deleted and created again under that name is someone else). It returns
// the owner's user id.
func (s *Server) reader(c *gin.Context) (string, bool) {
	owner, ok := s.readerOwner(c)
	return owner.UserID, ok
}

// readerOwner is reader returning the whole owner (user id and Incoming
// resource id): the rules endpoints need the resource.
func (s *Server) readerOwner(c *gin.Context) (protection.Owner, bool) {
	none := protection.Owner{}
	o, ok := s.ownerParam(c)
	if !ok {
		return none, false
	}
	bearerChallenge := `Bearer realm="` + s.cfg.Realm + `"`
	tok, err := uma.BearerToken(c.Request)
	if be := (*uma.BearerError)(nil); errors.As(err, &be) && be.Missing() {
		c.Header("WWW-Authenticate", bearerChallenge)
		s.fail(c, uma.NewError(http.StatusUnauthorized, "unauthorized", "a bearer token of the owner is required"), "reader_no_token")
		return none, false
	}
	var who rpt.Reader
	if err == nil {
		who, err = s.cfg.Verifier.Reader(c.Request.Context(), tok)
	}
	if err != nil {
		s.cfg.Logger.Info("reader token refused", "owner", o, "err", err)
		c.Header("WWW-Authenticate", bearerChallenge+`, error="invalid_token"`)
		s.fail(c, uma.NewError(http.StatusUnauthorized, uma.ErrInvalidToken, "the token is invalid or expired"), "reader_invalid_token")
		return none, false
	}
	if !s.readerAllowed(who.ClientID) {
		s.fail(c, uma.NewError(http.StatusForbidden, uma.ErrAccessDenied, "tokens of client %q may not read an Incoming", who.ClientID), "reader_client")
		return none, false
	}
	owner, err := s.cfg.Protection.Owner(c.Request.Context(), o)
	if err == nil && who.Subject != owner.UserID && who.Username == o {
		// The token names the owner's username but another id than the
		// cached one: the user may have been created again since.
		owner, err = s.cfg.Protection.Refresh(c.Request.Context(), o)
	}
	if err != nil {
		s.protectionFailed(c, o, err)
		return none, false
	}
	if who.Subject != owner.UserID {
		s.cfg.Logger.Info("reader is not the owner", "owner", o, "owner_id", owner.UserID, "sub", who.Subject, "preferred_username", who.Username)
		s.fail(c, uma.NewError(http.StatusForbidden, uma.ErrAccessDenied, "only the owner may read this Incoming"), "reader_not_owner")
		return none, false
	}
	return owner, true
}

func (s *Server) listMessages(c *gin.Context) {
	o, ok := s.reader(c)
	if !ok {
		return
	}
	limit := DefaultListLimit
	if v, present := c.GetQuery("limit"); present {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxListLimit || len(v) > 4 {
			s.fail(c, uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "limit must be 1 to %d", store.MaxListLimit), "limit")
			return
		}
		limit = n
	}
	list, err := s.cfg.Store.List(c.Request.Context(), o, limit)
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	out := make([]uma.Message, 0, len(list))
	for _, m := range list {
		out = append(out, messageJSON(m))
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, uma.MessageList{Messages: out})
}

// getMessage serves a message's content as an attachment, streamed from
// the store, with Range support (http.ServeContent: 206 for a range, 416
// for one outside the content, 304 for a matching If-None-Match).
func (s *Server) getMessage(c *gin.Context) {
	o, ok := s.reader(c)
	if !ok {
		return
	}
	m, content, err := s.cfg.Store.Get(c.Request.Context(), o, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		s.fail(c, uma.NewError(http.StatusNotFound, uma.ErrNotFound, "no such message"), "no_message")
		return
	}
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	defer content.Close()
	name := m.FileName
	if name == "" {
		name = "message-" + m.ID
	}
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": name})
	if disp == "" {
		disp = mime.FormatMediaType("attachment", map[string]string{"filename": "message-" + m.ID})
	}
	h := c.Writer.Header()
	h.Set("Content-Disposition", disp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, no-store")
	h.Set("ETag", `"`+m.SHA256+`"`)
	h.Set("Content-Type", m.ContentType)
	http.ServeContent(c.Writer, c.Request, "", time.Time{}, &progressSeeker{Content: content, p: s.progress(content, http.NewResponseController(c.Writer))})
}

// progressSeeker is a Content whose reads move the connection's deadlines
// on (progressReader): a download of many gigabytes to a slow but live
// client is not cut by the Write timeout.
type progressSeeker struct {
	store.Content
	p *progressReader
}

func (ps *progressSeeker) Read(b []byte) (int, error) { return ps.p.Read(b) }

// deleteMessage removes one message of the owner (the reader checks of
// listMessages): 204, or 404 for an id that is not his (another owner's or
// none).
func (s *Server) deleteMessage(c *gin.Context) {
	o, ok := s.reader(c)
	if !ok {
		return
	}
	id := c.Param("id")
	err := s.cfg.Store.Delete(c.Request.Context(), o, id)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(c, uma.NewError(http.StatusNotFound, uma.ErrNotFound, "no such message"), "no_message")
		return
	}
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	s.cfg.Logger.Info("message deleted", "owner", c.Param("owner"), "owner_id", o, "id", id)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusNoContent)
}
