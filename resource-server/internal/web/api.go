package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/umawide/umawide/internal/uma"
)

// The page's calls to the Resource Server's API, in process: the same
// handler chain and checks as any client's request, with the session's
// access token.

// maxAPIAnswer bounds an API answer the page reads (lists, rules, errors).
const maxAPIAnswer = 4 << 20

// recorder keeps an API answer in memory, bounded.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	over   bool
}

func (rec *recorder) Header() http.Header { return rec.header }
func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
}
func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.body.Len()+len(b) > maxAPIAnswer {
		rec.over = true
		return 0, fmt.Errorf("web: API answer over %d bytes", maxAPIAnswer)
	}
	return rec.body.Write(b)
}

// apiRequest is the API request the page makes for s.
func (h *Handler) apiRequest(r *http.Request, s *session, method, path string, body []byte) *http.Request {
	req, _ := http.NewRequestWithContext(r.Context(), method, path, bytes.NewReader(body))
	req.RemoteAddr = r.RemoteAddr
	req.Header.Set("Authorization", "Bearer "+s.access)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// call sends an API request and decodes a 2xx answer into out (when not
// nil); any other answer is the API's error.
func (h *Handler) call(r *http.Request, s *session, method, path string, body []byte, out any) *uma.Error {
	rec := &recorder{header: http.Header{}}
	h.cfg.API.ServeHTTP(rec, h.apiRequest(r, s, method, path, body))
	return answer(rec.status, rec.body.Bytes(), rec.over, out)
}

func answer(status int, body []byte, over bool, out any) *uma.Error {
	if status == 0 {
		status = http.StatusOK
	}
	if status >= 200 && status < 300 && !over {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(body, out); err == nil {
			return nil
		}
		return uma.NewError(http.StatusBadGateway, uma.ErrServerError, "the Resource Server's answer could not be read")
	}
	e := &uma.Error{}
	if json.Unmarshal(body, e) != nil || e.Code == "" {
		e = &uma.Error{Code: http.StatusText(status)}
	}
	e.StatusCode = status
	return e
}

// apiRefused shows the API's refusal as a page with the API's status. An
// invalid or expired token ends the session.
func (h *Handler) apiRefused(w http.ResponseWriter, r *http.Request, s *session, e *uma.Error) {
	text := e.Description
	if text == "" {
		text = e.Code
	}
	title := "Refused"
	switch e.StatusCode {
	case http.StatusUnauthorized:
		if c, err := r.Cookie(SessionCookie); err == nil {
			h.sessions.del(c.Value)
		}
		h.clearCookie(w, SessionCookie)
		title, text = "Session ended", "The Resource Server no longer accepts your login ("+text+"). Log in again."
	case http.StatusForbidden:
		title = "Not allowed"
	case http.StatusNotFound:
		title = "Not found"
	case http.StatusBadRequest:
		title = "Not accepted"
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusInternalServerError:
		title = "Unavailable"
	}
	h.cfg.Logger.Info("web: the API refused", "owner", s.owner, "path", r.URL.Path, "status", e.StatusCode, "error", e.Code, "description", e.Description)
	h.refuse(w, r, e.StatusCode, title, text)
}

// --- messages ---

type messageView struct {
	uma.Message
	Received time.Time
}

func (h *Handler) list(r *http.Request, s *session) ([]messageView, *uma.Error) {
	var l uma.MessageList
	if e := h.call(r, s, http.MethodGet, "/incoming/"+s.owner+"/messages?limit="+strconv.Itoa(ListLimit), nil, &l); e != nil {
		return nil, e
	}
	out := make([]messageView, 0, len(l.Messages))
	for _, m := range l.Messages {
		t, _ := time.Parse(time.RFC3339Nano, m.ReceivedAt)
		out = append(out, messageView{Message: m, Received: t})
	}
	return out, nil
}

// passThrough streams a successful download straight to the browser with
// the API's own attachment headers (and the page's sandboxing on top), and
// keeps any other answer, bounded, for a refusal page.
type passThrough struct {
	w      http.ResponseWriter
	header http.Header
	status int
	err    recorder
}

// downloadHeaders are the API answer's headers a download keeps.
var downloadHeaders = []string{"Content-Type", "Content-Disposition", "Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified"}

func (p *passThrough) Header() http.Header { return p.header }
func (p *passThrough) WriteHeader(code int) {
	if p.status != 0 {
		return
	}
	p.status = code
	if !p.ok() {
		p.err.WriteHeader(code)
		return
	}
	hd := p.w.Header()
	for _, k := range downloadHeaders {
		if v := p.header.Values(k); len(v) > 0 {
			hd[k] = v
		}
	}
	if !strings.HasPrefix(hd.Get("Content-Disposition"), "attachment") {
		hd.Set("Content-Disposition", "attachment")
	}
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hd.Set("Cache-Control", "private, no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	p.w.WriteHeader(code)
}
func (p *passThrough) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.WriteHeader(http.StatusOK)
	}
	if p.ok() {
		return p.w.Write(b)
	}
	return p.err.Write(b)
}
func (p *passThrough) Flush() {
	if f, ok := p.w.(http.Flusher); ok && p.ok() {
		f.Flush()
	}
}
func (p *passThrough) ok() bool {
	return p.status == http.StatusOK || p.status == http.StatusPartialContent
}

// crossOriginDownload reports whether a download request came from a page of
// another origin, by the browser's Sec-Fetch-Site header: "cross-site" (a
// link in a mail or on another site) and "same-site" (another host of the
// same domain, e.g. a webmail next to the Resource Server) are refused;
// "same-origin" (the page's own links) and "none" (a typed URL, a bookmark)
// pass, and so does its absence (older browsers and non-browser clients,
// which a cross-site link cannot drive). The session cookie is SameSite=Lax,
// which a top-level GET from another site still carries: without this check
// a sender could make Bob's browser download the sender's own file
// (Invoice.pdf.html) by mailing him its link.
func crossOriginDownload(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}

func (h *Handler) download(w http.ResponseWriter, r *http.Request, id string) {
	if crossOriginDownload(r) {
		h.refuse(w, r, http.StatusForbidden, "Refused", "This download was asked for by a link on another site; nothing was downloaded. Download your messages from your Incoming page.")
		return
	}
	s, _ := h.session(r)
	if s == nil {
		h.refuse(w, r, http.StatusUnauthorized, "Not logged in", "Log in to download your messages.")
		return
	}
	// GET for HEAD too (the API has no HEAD route; the server drops the
	// body of an answer to HEAD).
	req := h.apiRequest(r, s, http.MethodGet, "/incoming/"+s.owner+"/messages/"+id, nil)
	if v := r.Header.Get("Range"); v != "" {
		req.Header.Set("Range", v)
	}
	p := &passThrough{w: w, header: http.Header{}, err: recorder{header: http.Header{}}}
	h.cfg.API.ServeHTTP(p, req)
	if p.status == 0 {
		p.WriteHeader(http.StatusOK)
	}
	if !p.ok() {
		h.apiRefused(w, r, s, answer(p.status, p.err.body.Bytes(), p.err.over, nil))
	}
}

func (h *Handler) deleteMessage(w http.ResponseWriter, r *http.Request, id string) {
	s, _, ok := h.post(w, r)
	if !ok {
		return
	}
	if e := h.call(r, s, http.MethodDelete, "/incoming/"+s.owner+"/messages/"+id, nil, nil); e != nil {
		h.apiRefused(w, r, s, e)
		return
	}
	h.cfg.Logger.Info("web: message deleted", "owner", s.owner, "id", id)
	http.Redirect(w, r, Prefix+"/?done=deleted", http.StatusSeeOther)
}
