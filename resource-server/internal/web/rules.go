package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/umawide/umawide/internal/uma"
)

// The page only carries the rules (uma.OwnerRules) between the form and
// the API, which validates, normalises and stores them.

// rulesView is uma.OwnerRules as the form shows it.
type rulesView struct {
	Default                     string
	Allow, Deny                 string // one entry a line
	MessagesPerDay, BytesPerDay string // "" for no limit
}

// Defaults the form offers, with their meaning.
var defaultChoices = []struct{ Value, Label string }{
	{"anyone", "anyone verified may push (except the deny list)"},
	{"listed", "only senders on the allow list"},
	{"nobody", "nobody"},
}

func (v rulesView) Choices() []struct{ Value, Label string } { return defaultChoices }

func (h *Handler) rules(r *http.Request, s *session) (*rulesView, *uma.Error) {
	var rl uma.OwnerRules
	if e := h.call(r, s, http.MethodGet, "/incoming/"+s.owner+"/rules", nil, &rl); e != nil {
		return nil, e
	}
	v := &rulesView{Default: rl.Default, Allow: strings.Join(rl.Allow, "\n"), Deny: strings.Join(rl.Deny, "\n")}
	if q := rl.Quota.MessagesPerDay; q > 0 {
		v.MessagesPerDay = strconv.FormatInt(q, 10)
	}
	if q := rl.Quota.BytesPerDay; q > 0 {
		v.BytesPerDay = strconv.FormatInt(q, 10)
	}
	return v, nil
}

// entries splits a list field: one entry a line (commas and blanks also
// separate), empty ones dropped. The API judges each entry.
func entries(s string) []string {
	out := []string{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' || r == '\n' }) {
		out = append(out, f)
	}
	return out
}

func (h *Handler) saveRules(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.post(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	rl := uma.OwnerRules{Default: f.Get("default"), Allow: entries(f.Get("allow")), Deny: entries(f.Get("deny"))}
	for _, q := range []struct {
		field string
		dst   *int64
	}{{"messages_per_day", &rl.Quota.MessagesPerDay}, {"bytes_per_day", &rl.Quota.BytesPerDay}} {
		v := strings.TrimSpace(f.Get(q.field))
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			h.refuse(w, r, http.StatusBadRequest, "Not accepted", q.field+": a whole number, or empty (or 0) for no limit; nothing was changed.")
			return
		}
		*q.dst = n
	}
	body, _ := json.Marshal(rl)
	if e := h.call(r, s, http.MethodPut, "/incoming/"+s.owner+"/rules", body, nil); e != nil {
		if e.StatusCode == http.StatusBadRequest {
			e.Description += "; nothing was changed"
		}
		h.apiRefused(w, r, s, e)
		return
	}
	h.cfg.Logger.Info("web: rules saved", "owner", s.owner)
	http.Redirect(w, r, Prefix+"/?done=rules#rules", http.StatusSeeOther)
}
