package rules

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/umawide/umawide/internal/uma"
)

// TestSharedEntries checks the vector keycloak/extension's OwnerRulesTest
// reads too: both sides must normalise every entry alike.
func TestSharedEntries(t *testing.T) {
	f, err := os.Open("testdata/entries.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, '\t')
		if i < 0 {
			t.Fatalf("line without tab: %q", line)
		}
		in, want := line[:i], line[i+1:]
		got, err := NormalizeEntry(in)
		switch {
		case want == "!" && err == nil:
			t.Errorf("NormalizeEntry(%q) = %q, want an error", in, got)
		case want != "!" && (err != nil || got != want):
			t.Errorf("NormalizeEntry(%q) = %q, %v, want %q", in, got, err, want)
		}
		n++
	}
	if n < 30 {
		t.Fatalf("only %d vectors", n)
	}
}

func TestParse(t *testing.T) {
	r, err := Parse(strings.NewReader(`{"default":"listed","allow":["Alice@Foo.Example","foo.example","alice@foo.example"],"deny":[" evil.example "],"quota":{"messages_per_day":3,"bytes_per_day":1000}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := uma.OwnerRules{Default: "listed", Allow: []string{"alice@foo.example", "foo.example"}, Deny: []string{"evil.example"},
		Quota: uma.RulesQuota{MessagesPerDay: 3, BytesPerDay: 1000}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("Parse = %+v", r)
	}
	r, err = Parse(strings.NewReader(`{"default":"anyone"}`))
	if err != nil || !reflect.DeepEqual(r, Default()) {
		t.Fatalf("minimal: %+v %v", r, err)
	}
}

func TestParseNamesTheField(t *testing.T) {
	long := `"` + strings.Repeat("a", MaxBody) + `"`
	many := `["` + strings.Repeat(`a.example","`, MaxEntries) + `b.example"]`
	for body, field := range map[string]string{
		`{}`:                                  "default",
		`{"default":"some"}`:                  "default",
		`{"default":1}`:                       "default",
		`{"default":"anyone","allow":["x@"]}`: "allow[0]",
		`{"default":"anyone","deny":["a.example",""]}`:                    "deny[1]",
		`{"default":"anyone","deny":"a.example"}`:                         "deny",
		`{"default":"anyone","allow":` + many + `}`:                       "allow",
		`{"default":"anyone","quota":{"messages_per_day":-1}}`:            "quota.messages_per_day",
		`{"default":"anyone","quota":{"bytes_per_day":1e20}}`:             "quota.bytes_per_day",
		`{"default":"anyone","quota":{"bytes_per_day":1125899906842625}}`: "quota.bytes_per_day",
		`{"default":"anyone","quota":{"messages":1}}`:                     "messages",
		`{"default":"anyone","extra":1}`:                                  "extra",
		`{"default":"anyone"} {}`:                                         "body",
		`[`:                                                               "body",
		`{"default":` + long + `}`:                                        "body",
	} {
		_, err := Parse(strings.NewReader(body))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("Parse(%.60s) = %v, want a FieldError on %s", body, err, field)
		}
	}
}

func TestAttributesRoundTrip(t *testing.T) {
	r := uma.OwnerRules{Default: "nobody", Allow: []string{"a@b.example"}, Deny: []string{"c.example", "d@e.example"},
		Quota: uma.RulesQuota{MessagesPerDay: 2, BytesPerDay: 5}}
	a := ToAttributes(r)
	if !reflect.DeepEqual(a[uma.RulesAttrDeny], []string{"c.example", "d@e.example"}) || a[uma.RulesAttrBytesPerDay][0] != "5" {
		t.Fatalf("ToAttributes = %v", a)
	}
	a["other"] = []string{"kept"}
	back, err := FromAttributes(a)
	if err != nil || !reflect.DeepEqual(back, r) {
		t.Fatalf("FromAttributes = %+v, %v", back, err)
	}
	if d, err := FromAttributes(nil); err != nil || !reflect.DeepEqual(d, Default()) {
		t.Fatalf("no attributes: %+v %v", d, err)
	}
	for name, bad := range map[string][]string{
		uma.RulesAttrDefault:        {"anyone", "nobody"},
		uma.RulesAttrAllow:          {"not an entry"},
		uma.RulesAttrMessagesPerDay: {"x"},
		uma.RulesAttrBytesPerDay:    {"1", "2"},
	} {
		a := ToAttributes(r)
		a[name] = bad
		if _, err := FromAttributes(a); err == nil {
			t.Errorf("%s = %v accepted", name, bad)
		}
	}
}

type memResources struct{ attrs map[string][]string }

func (m *memResources) ResourceAttributes(context.Context, string) (map[string][]string, error) {
	return maps.Clone(m.attrs), nil
}

func (m *memResources) ReplaceResourceAttributes(_ context.Context, _, prefix string, a map[string][]string) error {
	maps.DeleteFunc(m.attrs, func(k string, _ []string) bool { return strings.HasPrefix(k, prefix) })
	maps.Copy(m.attrs, a)
	return nil
}

func TestStore(t *testing.T) {
	m := &memResources{attrs: map[string][]string{"unrelated": {"x"}, uma.RulesAttrAllow: {"old.example"}}}
	s := NewStore(m, nil, nil)
	if _, err := s.Put(context.Background(), Change{ResourceID: "r"}, uma.OwnerRules{Default: "bad"}); err == nil {
		t.Fatal("invalid rules stored")
	}
	got, err := s.Put(context.Background(), Change{ResourceID: "r"}, uma.OwnerRules{Default: "listed", Deny: []string{"Evil.Example"}})
	if err != nil || got.Deny[0] != "evil.example" {
		t.Fatalf("Put = %+v %v", got, err)
	}
	if m.attrs["unrelated"] == nil || m.attrs[uma.RulesAttrAllow] != nil {
		t.Fatalf("attributes after Put: %v", m.attrs)
	}
	read, err := s.Get(context.Background(), "r")
	if err != nil || !reflect.DeepEqual(read, got) {
		t.Fatalf("Get = %+v %v, want %+v", read, err, got)
	}
}
