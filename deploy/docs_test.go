package deploy

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// TestDeploymentDocs keeps docs/DEPLOYMENT.md true to the files: it names
// every variable the compose files interpolate, and every
// `docker compose ... run` command it shows uses a service, flags, variables,
// URLs and files that exist.
func TestDeploymentDocs(t *testing.T) {
	tl := getTools(t)
	data, err := os.ReadFile(filepath.Join(tl.root, "docs", "DEPLOYMENT.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, v := range composeVariables(t, tl.root) {
		if !strings.Contains(doc, v) {
			t.Errorf("docs/DEPLOYMENT.md does not mention the compose variable %s", v)
		}
	}

	p, err := loadProject(tl.root, []string{"compose.yaml", "compose.scale.yaml"}, []string{toolProfile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc := &projectChecker{checker: &checker{root: tl.root, tl: tl, r: &report{}}, p: p, services: map[string]types.ServiceConfig{}, kinds: map[string]string{}}
	for _, s := range p.Services {
		pc.services[s.Name] = s
		pc.kinds[s.Name] = pc.kind(s)
	}
	runRE := regexp.MustCompile(`docker compose(?: -f \S+)* run (.*)$`)
	commands := 0
	for _, line := range strings.Split(doc, "\n") {
		m := runRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		commands++
		fields := strings.Fields(m[1])
		if i := indexOf(fields, "<"); i >= 0 {
			fields = fields[:i] // shell redirection
		}
		var env []string
		for len(fields) > 0 && strings.HasPrefix(fields[0], "-") {
			if fields[0] == "-e" && len(fields) > 1 {
				env = append(env, strings.SplitN(fields[1], "=", 2)[0])
				fields = fields[1:]
			}
			fields = fields[1:]
		}
		if len(fields) < 2 {
			t.Errorf("docs: %q: no service and command", line)
			continue
		}
		svc, ok := pc.services[fields[0]]
		if !ok {
			t.Errorf("docs: %q: no service %s", line, fields[0])
			continue
		}
		switch kind := pc.kinds[svc.Name]; kind {
		case "claims-provider":
			if fields[1] != "rotate" {
				t.Errorf("docs: %q: claims-provider has no command %s", line, fields[1])
			}
		case "rqp-client":
			help := tl.help["rqp-client "+fields[1]]
			if help == "" {
				t.Errorf("docs: %q: rqp-client has no command %s", line, fields[1])
				continue
			}
			for _, e := range env {
				if !strings.Contains(help, e) {
					t.Errorf("docs: %q: rqp-client %s reads no variable %s", line, fields[1], e)
				}
			}
			args := fields[2:]
			for i, a := range args {
				if !strings.HasPrefix(a, "-") || a == "-" {
					continue
				}
				name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
				if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(name) + `(\s|$)`).MatchString(help) {
					t.Errorf("docs: %q: rqp-client %s has no flag -%s", line, fields[1], name)
					continue
				}
				if i+1 >= len(args) {
					continue
				}
				switch name {
				case "to", "incoming":
					if _, err := pc.resolves(incomingBase(args[i+1]), "resource-server"); err != nil {
						t.Errorf("docs: %q: --%s: %v", line, name, err)
					}
				case "file":
					f := args[i+1]
					if f == "-" {
						continue
					}
					found := false
					for _, m := range svc.Volumes {
						if strings.HasPrefix(f, m.Target+"/") {
							found = true
							if _, err := os.Stat(filepath.Join(m.Source, strings.TrimPrefix(f, m.Target+"/"))); err != nil {
								t.Errorf("docs: %q: --file %s: %v", line, f, err)
							}
						}
					}
					if !found {
						t.Errorf("docs: %q: --file %s is on no mount of %s", line, f, svc.Name)
					}
				}
			}
		default:
			t.Errorf("docs: %q: running service %s is not covered by this check", line, svc.Name)
		}
	}
	if commands < 5 {
		t.Errorf("docs/DEPLOYMENT.md shows only %d docker compose run commands", commands)
	}
}

// incomingBase is the scheme and host of an Incoming URL.
func incomingBase(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
