package flagenv

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxSecretFileBytes bounds a secret file.
const MaxSecretFileBytes = 4 << 10

type secret struct {
	p               *string
	name, fileName  string
	value, fromFile string
}

// Secret defines -name and -name-file for a secret: Parse stores in p the
// value, or the trimmed content of the file (at most MaxSecretFileBytes, not
// empty); both at once are refused. Neither has a default, so -h never shows
// one.
func (s *Set) Secret(p *string, name, usage string) {
	sc := &secret{p: p, name: name, fileName: name + "-file"}
	s.secrets = append(s.secrets, sc)
	s.StringVar(&sc.value, name, "", usage+" (prefer -"+sc.fileName+" or the environment: command lines are visible to other users)")
	s.StringVar(&sc.fromFile, sc.fileName, "", "file holding the "+strings.ReplaceAll(name, "-", " "))
}

func (sc *secret) resolve() error {
	switch {
	case sc.value != "" && sc.fromFile != "":
		return fmt.Errorf("give the %s once: -%s or -%s", strings.ReplaceAll(sc.name, "-", " "), sc.name, sc.fileName)
	case sc.fromFile != "":
		v, err := ReadSecretFile(sc.fromFile)
		if err != nil {
			return fmt.Errorf("-%s: %w", sc.fileName, err)
		}
		*sc.p = v
	default:
		*sc.p = sc.value
	}
	return nil
}

// ReadSecretFile reads a secret from a file: at most MaxSecretFileBytes,
// white space around it trimmed, not empty.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSecretFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxSecretFileBytes {
		return "", fmt.Errorf("%s: larger than %d bytes", path, MaxSecretFileBytes)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}
