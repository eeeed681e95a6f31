// Package logtail reads the end of a log file, for error messages about a
// process that did not start (Keycloak, PostgreSQL).
package logtail

import (
	"os"
	"strings"
)

// Tail is the last lines of the file at path, "" when it cannot be read.
func Tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
