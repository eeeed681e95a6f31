// Package rules is the owner's say over his Incoming (issue 15): the owner
// rules (uma.OwnerRules) parsed, normalised and bounded exactly as the
// claims-token policy compares them (keycloak/extension OwnerRules.java; one
// normalisation, checked on both sides by testdata/entries.tsv), mapped to
// and from the Incoming resource's attributes in Keycloak, and read and
// written through the protection API. The policy enforces them at the AS
// before any RPT is issued; this package only keeps them.
//
// The API the handlers (GET/PUT /incoming/{owner}/rules) and Bob's web page
// use:
//
//	Parse(body)                 decode strictly and Validate (a *FieldError names the field)
//	Validate(r)                 the normalised, bounded rules, or a *FieldError
//	NormalizeEntry(s)           one allow/deny entry as the policy compares it
//	(*Store).Get(ctx, resID)    the rules of an Incoming (defaults where none were set)
//	(*Store).Put(ctx, c, r)     validate, write, log who changed what and when
package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/umawide/umawide/internal/uma"
)

// Bounds. Each entry is one attribute value, stored by Keycloak in a
// column of 255 characters: an address is at most 254, a domain 253.
const (
	// MaxEntries bounds each of the allow and deny lists.
	MaxEntries = 200
	// MaxMessagesPerDay and MaxBytesPerDay bound the quota (1 PiB).
	MaxMessagesPerDay = 1_000_000
	MaxBytesPerDay    = 1 << 50
	// MaxBody bounds a PUT body: 2 full lists of the longest entries, JSON-quoted.
	MaxBody = 2*MaxEntries*(MaxAddress+4) + 1024
	// MaxAddress and MaxDomain are the longest entries.
	MaxAddress = 254
	MaxDomain  = 253
	maxLocal   = 64
)

// FieldError is invalid input, naming the field (default, allow[2],
// quota.bytes_per_day, ...): a 400 on the rules API.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Default is what an Incoming without rules does: anyone verified, no lists,
// no quota.
func Default() uma.OwnerRules {
	return uma.OwnerRules{Default: uma.RulesAnyone, Allow: []string{}, Deny: []string{}}
}

// Parse decodes a rules document strictly (unknown fields, trailing data and
// more than MaxBody bytes are refused) and validates it.
func Parse(body io.Reader) (uma.OwnerRules, error) {
	raw, err := io.ReadAll(io.LimitReader(body, MaxBody+1))
	if err != nil {
		return uma.OwnerRules{}, fmt.Errorf("rules: reading the body: %w", err)
	}
	if len(raw) > MaxBody {
		return uma.OwnerRules{}, fieldErr("body", "more than %d bytes", MaxBody)
	}
	// Absent members stay distinguishable from empty ones only for default,
	// which is required; absent lists and quota are empty and unlimited.
	var in struct {
		Default *string         `json:"default"`
		Allow   []string        `json:"allow"`
		Deny    []string        `json:"deny"`
		Quota   *uma.RulesQuota `json:"quota"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return uma.OwnerRules{}, fieldErr(te.Field, "must be %s", te.Type.String())
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return uma.OwnerRules{}, fieldErr(strings.Trim(f, `"`), "unknown field")
		}
		return uma.OwnerRules{}, fieldErr("body", "not a JSON rules object: %v", err)
	}
	if dec.More() {
		return uma.OwnerRules{}, fieldErr("body", "data after the JSON object")
	}
	if in.Default == nil {
		return uma.OwnerRules{}, fieldErr("default", "required: %q, %q or %q", uma.RulesAnyone, uma.RulesListed, uma.RulesNobody)
	}
	r := uma.OwnerRules{Default: *in.Default, Allow: in.Allow, Deny: in.Deny}
	if in.Quota != nil {
		r.Quota = *in.Quota
	}
	return Validate(r)
}

// Validate returns r normalised (entries lower-cased and trimmed, duplicates
// dropped, in their first order; nil lists empty) or a *FieldError.
func Validate(r uma.OwnerRules) (uma.OwnerRules, error) {
	switch r.Default {
	case uma.RulesAnyone, uma.RulesListed, uma.RulesNobody:
	default:
		return uma.OwnerRules{}, fieldErr("default", "must be %q, %q or %q", uma.RulesAnyone, uma.RulesListed, uma.RulesNobody)
	}
	out := uma.OwnerRules{Default: r.Default, Quota: r.Quota}
	var err error
	if out.Allow, err = entries("allow", r.Allow); err != nil {
		return uma.OwnerRules{}, err
	}
	if out.Deny, err = entries("deny", r.Deny); err != nil {
		return uma.OwnerRules{}, err
	}
	if q := r.Quota.MessagesPerDay; q < 0 || q > MaxMessagesPerDay {
		return uma.OwnerRules{}, fieldErr("quota.messages_per_day", "must be 0 (no limit) to %d", MaxMessagesPerDay)
	}
	if q := r.Quota.BytesPerDay; q < 0 || q > MaxBytesPerDay {
		return uma.OwnerRules{}, fieldErr("quota.bytes_per_day", "must be 0 (no limit) to %d", int64(MaxBytesPerDay))
	}
	return out, nil
}

func entries(field string, in []string) ([]string, error) {
	if len(in) > MaxEntries {
		return nil, fieldErr(field, "more than %d entries", MaxEntries)
	}
	out := make([]string, 0, len(in))
	for i, e := range in {
		n, err := NormalizeEntry(e)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// NormalizeEntry is one allow or deny entry as the policy compares it with
// the verified sender: an address local@domain (lower-cased; a local part of
// 1 to 64 printable ASCII characters other than space and '@'; 254
// characters at most) or a domain (lower-cased LDH labels of 1 to 63
// characters not starting or ending with '-', 253 characters at most, no
// trailing dot). Surrounding spaces and tabs are dropped. The sender's
// email is normalised the same way by the policy (EmailAddress.java).
func NormalizeEntry(s string) (string, error) {
	s = strings.ToLower(strings.Trim(s, " \t"))
	if s == "" {
		return "", errors.New("empty entry")
	}
	local, domain, isAddr := strings.Cut(s, "@")
	if !isAddr {
		if !validDomain(s) {
			return "", fmt.Errorf("%q is neither an address nor a domain", clip(s))
		}
		return s, nil
	}
	if len(s) > MaxAddress {
		return "", fmt.Errorf("address longer than %d characters", MaxAddress)
	}
	if local == "" || len(local) > maxLocal || strings.ContainsFunc(local, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '@' }) {
		return "", fmt.Errorf("%q: the part before @ must be 1 to %d printable ASCII characters", clip(s), maxLocal)
	}
	if strings.Contains(domain, "@") || !validDomain(domain) {
		return "", fmt.Errorf("%q: no valid domain after @", clip(s))
	}
	return s, nil
}

// validDomain: lower-case LDH labels, as Domains.normalize in the extension.
func validDomain(d string) bool {
	if d == "" || len(d) > MaxDomain {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// ToAttributes is r (valid, normalised) as the Incoming resource's
// attributes: one value per entry; lists and quotas that are empty or 0
// are left out.
func ToAttributes(r uma.OwnerRules) map[string][]string {
	a := map[string][]string{uma.RulesAttrDefault: {r.Default}}
	if len(r.Allow) > 0 {
		a[uma.RulesAttrAllow] = slices.Clone(r.Allow)
	}
	if len(r.Deny) > 0 {
		a[uma.RulesAttrDeny] = slices.Clone(r.Deny)
	}
	if r.Quota.MessagesPerDay > 0 {
		a[uma.RulesAttrMessagesPerDay] = []string{strconv.FormatInt(r.Quota.MessagesPerDay, 10)}
	}
	if r.Quota.BytesPerDay > 0 {
		a[uma.RulesAttrBytesPerDay] = []string{strconv.FormatInt(r.Quota.BytesPerDay, 10)}
	}
	return a
}

// FromAttributes reads the rules from the resource's attributes (others are
// ignored); no rules attribute at all is Default(). Attributes that are not
// valid rules (changed behind this server's back) are an error: the policy
// refuses every sender then, and the owner should see why.
func FromAttributes(a map[string][]string) (uma.OwnerRules, error) {
	r := Default()
	if v, ok := a[uma.RulesAttrDefault]; ok {
		if len(v) != 1 {
			return uma.OwnerRules{}, fmt.Errorf("rules: attribute %s has %d values", uma.RulesAttrDefault, len(v))
		}
		r.Default = v[0]
	}
	r.Allow = append(r.Allow, a[uma.RulesAttrAllow]...)
	r.Deny = append(r.Deny, a[uma.RulesAttrDeny]...)
	for name, dst := range map[string]*int64{uma.RulesAttrMessagesPerDay: &r.Quota.MessagesPerDay, uma.RulesAttrBytesPerDay: &r.Quota.BytesPerDay} {
		v, ok := a[name]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.Join(v, ","), 10, 64)
		if err != nil || len(v) != 1 {
			return uma.OwnerRules{}, fmt.Errorf("rules: attribute %s is not one number", name)
		}
		*dst = n
	}
	v, err := Validate(r)
	if err != nil {
		return uma.OwnerRules{}, fmt.Errorf("rules: the stored rules are invalid: %w", err)
	}
	return v, nil
}

// Resources reads and writes a resource's attributes through the
// protection API (protection.Client).
type Resources interface {
	// ResourceAttributes are the attributes of the resource id.
	ResourceAttributes(ctx context.Context, resourceID string) (map[string][]string, error)
	// ReplaceResourceAttributes replaces every attribute of the resource
	// whose name starts with prefix by attrs, leaving the others.
	ReplaceResourceAttributes(ctx context.Context, resourceID, prefix string, attrs map[string][]string) error
}

// Store keeps the rules of Incomings in Keycloak.
type Store struct {
	res Resources
	log *slog.Logger
	now func() time.Time
}

// NewStore makes a Store; log and now default to slog.Default() and time.Now.
func NewStore(res Resources, log *slog.Logger, now func() time.Time) *Store {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Store{res: res, log: log, now: now}
}

// Get reads the rules of the Incoming resource resourceID.
func (s *Store) Get(ctx context.Context, resourceID string) (uma.OwnerRules, error) {
	a, err := s.res.ResourceAttributes(ctx, resourceID)
	if err != nil {
		return uma.OwnerRules{}, fmt.Errorf("rules: reading resource %s: %w", resourceID, err)
	}
	return FromAttributes(a)
}

// Change says who changes the rules of which Incoming, for the log.
type Change struct {
	Owner      string // the owner's username
	UserID     string // his Keycloak user id (the token's sub)
	ResourceID string // his Incoming resource
	Via        string // "api" or "web"
}

// Put validates r and makes it the rules of c.ResourceID; it returns what
// was stored and logs the change (who, when, what). The policy applies the
// new rules from the next grant on.
func (s *Store) Put(ctx context.Context, c Change, r uma.OwnerRules) (uma.OwnerRules, error) {
	v, err := Validate(r)
	if err != nil {
		return uma.OwnerRules{}, err
	}
	if err := s.res.ReplaceResourceAttributes(ctx, c.ResourceID, uma.RulesAttrPrefix, ToAttributes(v)); err != nil {
		return uma.OwnerRules{}, fmt.Errorf("rules: writing resource %s: %w", c.ResourceID, err)
	}
	s.log.Info("owner rules changed", "owner", c.Owner, "user_id", c.UserID, "resource_id", c.ResourceID, "via", c.Via,
		"at", s.now().UTC().Format(time.RFC3339), "default", v.Default, "allow", v.Allow, "deny", v.Deny,
		"messages_per_day", v.Quota.MessagesPerDay, "bytes_per_day", v.Quota.BytesPerDay)
	return v, nil
}
