package launcher

import (
	"slices"
	"strings"
	"testing"
)

func TestProcessArgsLoneServer(t *testing.T) {
	args := processArgs(Options{HTTPPort: 18080, ManagementPort: 19000})
	want := []string{"start-dev", "--import-realm", "--db=dev-mem", "--http-host=127.0.0.1",
		"--http-port=18080", "--http-management-port=19000", "--health-enabled=true", "--metrics-enabled=true"}
	if !slices.Equal(args, want) {
		t.Fatalf("args %q, want %q", args, want)
	}
}

func TestProcessArgsClusterNode(t *testing.T) {
	c := &Cluster{DBURL: "jdbc:postgresql://127.0.0.1:5433/kc", DBUser: "kc", DBPassword: "secret",
		Hostname: "http://127.0.0.1:18080", Production: true, SkipImport: true, BindPort: 12345}
	args := processArgs(Options{HTTPPort: 18180, ManagementPort: 19100, Cluster: c})
	joined := strings.Join(args, " ")
	if args[0] != "start" {
		t.Errorf("command %q, want start", args[0])
	}
	for _, want := range []string{"--db=postgres", "--db-url=jdbc:postgresql://127.0.0.1:5433/kc", "--db-username=kc",
		"--db-pool-max-size=10", "--cache=ispn", "--cache-stack=jdbc-ping",
		"--cache-embedded-network-bind-address=127.0.0.1", "--cache-embedded-network-bind-port=12345",
		"--http-enabled=true", "--hostname=http://127.0.0.1:18080", "--hostname-backchannel-dynamic=true",
		"--http-port=18180", "--http-management-port=19100"} {
		if !slices.Contains(args, want) {
			t.Errorf("args lack %s: %s", want, joined)
		}
	}
	for _, unwanted := range []string{"--import-realm", "--db=dev-mem", "secret"} {
		if strings.Contains(joined, unwanted) {
			t.Errorf("args have %s: %s", unwanted, joined)
		}
	}
	if env := clusterEnv(c); !slices.Equal(env, []string{"KC_DB_PASSWORD=secret"}) {
		t.Errorf("env %q", env)
	}
	dev := processArgs(Options{Cluster: &Cluster{DBURL: "jdbc:postgresql://x/y", DBUser: "u"}})
	if dev[0] != "start-dev" || !slices.Contains(dev, "--import-realm") || slices.Contains(dev, "--hostname-strict=false") {
		t.Errorf("start-dev node: %q", dev)
	}
}

func TestFreeClusterPort(t *testing.T) {
	p, err := FreeClusterPort()
	if err != nil {
		t.Fatal(err)
	}
	if p < 11000 || p+fdSockOffset > 65535 {
		t.Fatalf("port %d: its failure-detection port %d is out of range", p, p+fdSockOffset)
	}
	if (&Cluster{DBURL: "jdbc:postgresql://x/y"}).check() == nil {
		t.Error("a cluster without a database user passed the check")
	}
}

// An organisation's Keycloak of the federation test: bound to every
// address of its namespace, HTTPS options appended after the launcher's.
func TestProcessArgsBindHostAndExtra(t *testing.T) {
	args := processArgs(Options{HTTPPort: 8080, ManagementPort: 9000, BindHost: "0.0.0.0",
		ExtraArgs: []string{"--https-port=8443", "--truststore-paths=/ca.pem"}})
	want := []string{"start-dev", "--import-realm", "--db=dev-mem", "--http-host=0.0.0.0",
		"--http-port=8080", "--http-management-port=9000", "--health-enabled=true", "--metrics-enabled=true",
		"--https-port=8443", "--truststore-paths=/ca.pem"}
	if !slices.Equal(args, want) {
		t.Fatalf("args %q, want %q", args, want)
	}
	if v := (Options{}).version(); v != Version {
		t.Errorf("default version %s, want %s", v, Version)
	}
}
