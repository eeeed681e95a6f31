package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// A minimal Dockerfile reader: enough to check what the deployment relies
// on (stages, base images, COPY sources, USER, ENV, VOLUME, EXPOSE,
// ENTRYPOINT, RUN). Parser directives and comments are skipped, line
// continuations joined; heredocs are not supported (none are used).

type instruction struct {
	line int
	cmd  string // upper case
	args string
}

type stage struct {
	name, base string // base: an image or an earlier stage's name
	instrs     []instruction
}

type dockerfile struct {
	path   string
	stages []*stage
}

func parseDockerfile(path string) (*dockerfile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	df := &dockerfile{path: path}
	var cur *stage
	var buf strings.Builder
	start, n := 0, 0
	flush := func() error {
		text := strings.TrimSpace(buf.String())
		buf.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			var rest []string
			for _, f := range fields {
				if !strings.HasPrefix(f, "--") {
					rest = append(rest, f)
				}
			}
			if len(rest) != 1 && !(len(rest) == 3 && strings.EqualFold(rest[1], "AS")) {
				return fmt.Errorf("%s:%d: FROM %s: want an image and an optional AS name", path, start, in.args)
			}
			cur = &stage{base: rest[0]}
			if len(rest) == 3 {
				cur.name = rest[2]
			}
			df.stages = append(df.stages, cur)
			return nil
		}
		if cur == nil {
			if in.cmd == "ARG" {
				return nil
			}
			return fmt.Errorf("%s:%d: %s before the first FROM", path, start, in.cmd)
		}
		cur.instrs = append(cur.instrs, in)
		return nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && buf.Len() == 0) {
			continue
		}
		if buf.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			buf.WriteString(strings.TrimSuffix(line, "\\"))
			buf.WriteString(" ")
			continue
		}
		buf.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(df.stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", path)
	}
	return df, nil
}

// stage returns the named stage; "" is the last one (what a build without
// target produces).
func (d *dockerfile) stage(name string) *stage {
	if name == "" {
		return d.stages[len(d.stages)-1]
	}
	for _, s := range d.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// chain is the stage and the earlier stages it is built FROM, nearest first.
func (d *dockerfile) chain(s *stage) []*stage {
	out := []*stage{s}
	for {
		parent := d.stage(s.base)
		if parent == nil || s.base == "" || parent == s {
			return out
		}
		out = append(out, parent)
		s = parent
	}
}

// isStage says whether name is a stage defined before the instruction at line.
func (d *dockerfile) isStage(name string) bool {
	for _, s := range d.stages {
		if s.name != "" && s.name == name {
			return true
		}
	}
	return false
}

// last returns the arguments of the stage chain's last instruction cmd
// (ENTRYPOINT, USER, HEALTHCHECK, ...), nearest stage first.
func (d *dockerfile) last(s *stage, cmd string) (string, bool) {
	for _, st := range d.chain(s) {
		for i := len(st.instrs) - 1; i >= 0; i-- {
			if st.instrs[i].cmd == cmd {
				return st.instrs[i].args, true
			}
		}
	}
	return "", false
}

// all returns the arguments of every cmd instruction of the chain, from the
// first stage to this one.
func (d *dockerfile) all(s *stage, cmd string) []instruction {
	chain := d.chain(s)
	var out []instruction
	for i := len(chain) - 1; i >= 0; i-- {
		for _, in := range chain[i].instrs {
			if in.cmd == cmd {
				out = append(out, in)
			}
		}
	}
	return out
}

// env is the stage chain's ENV (KEY=value pairs; the legacy "ENV KEY value"
// form too).
func (d *dockerfile) env(s *stage) map[string]string {
	out := map[string]string{}
	for _, in := range d.all(s, "ENV") {
		fields := strings.Fields(in.args)
		if len(fields) >= 2 && !strings.Contains(fields[0], "=") {
			out[fields[0]] = strings.Join(fields[1:], " ")
			continue
		}
		for _, f := range fields {
			k, v, _ := strings.Cut(f, "=")
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// execForm parses a JSON array (ENTRYPOINT ["a", "b"]); nil for the shell form.
func execForm(args string) []string {
	var out []string
	if err := json.Unmarshal([]byte(args), &out); err != nil {
		return nil
	}
	return out
}

// copyArgs splits COPY's arguments into flags (--from=x: "from" -> "x"),
// sources and destination.
func copyArgs(args string) (flags map[string]string, srcs []string, dst string) {
	flags = map[string]string{}
	fields := strings.Fields(args)
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
		k, v, _ := strings.Cut(strings.TrimPrefix(fields[0], "--"), "=")
		flags[k] = v
		fields = fields[1:]
	}
	if len(fields) < 2 {
		return flags, nil, ""
	}
	return flags, fields[:len(fields)-1], fields[len(fields)-1]
}

func TestParseDockerfile(t *testing.T) {
	path := t.TempDir() + "/Dockerfile"
	os.WriteFile(path, []byte(`# syntax=docker/dockerfile:1
ARG X=1
FROM golang:1.2.3 AS build
RUN a && \
    b
# a comment
COPY --from=x --chown=1:2 a b /dst/

FROM build AS mid
ENV A=1 B="two"
USER 10

FROM scratch AS final
COPY --from=mid /x /y
ENTRYPOINT ["/bin/app", "serve"]
`), 0o644)
	df, err := parseDockerfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(df.stages) != 3 || df.stages[0].name != "build" || df.stages[0].base != "golang:1.2.3" || df.stages[2].base != "scratch" {
		t.Fatalf("stages %+v", df.stages)
	}
	run := df.stages[0].instrs[0]
	if run.cmd != "RUN" || !strings.Contains(run.args, "a &&") || !strings.Contains(run.args, "b") || run.line != 4 {
		t.Fatalf("RUN %+v", run)
	}
	flags, srcs, dst := copyArgs(df.stages[0].instrs[1].args)
	if flags["from"] != "x" || flags["chown"] != "1:2" || strings.Join(srcs, ",") != "a,b" || dst != "/dst/" {
		t.Fatalf("COPY %v %v %v", flags, srcs, dst)
	}
	mid := df.stage("mid")
	if u, _ := df.last(mid, "USER"); u != "10" {
		t.Fatalf("USER %q", u)
	}
	if e := df.env(mid); e["A"] != "1" || e["B"] != "two" {
		t.Fatalf("ENV %v", e)
	}
	final := df.stage("")
	if _, ok := df.last(final, "USER"); ok {
		t.Fatal("scratch stage inherits no USER")
	}
	if ep := execForm(mustLast(df.last(final, "ENTRYPOINT"))); len(ep) != 2 || ep[0] != "/bin/app" {
		t.Fatalf("ENTRYPOINT %q", ep)
	}
	if !df.isStage("build") || df.isStage("golang") {
		t.Fatal("isStage")
	}
	os.WriteFile(path, []byte("RUN x\n"), 0o644)
	if _, err := parseDockerfile(path); err == nil {
		t.Fatal("a Dockerfile without FROM parsed")
	}
}

func mustLast(s string, _ bool) string { return s }
