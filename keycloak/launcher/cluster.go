package launcher

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Cluster makes a process-mode Keycloak a node of a cluster, as
// compose.scale.yaml runs one: an external PostgreSQL database instead of
// dev-mem, embedded Infinispan (cache ispn) whose nodes find each other
// through that database (Keycloak 26's default stack jdbc-ping), the
// cluster transport on 127.0.0.1 and a port of this node's own.
type Cluster struct {
	// DBURL is the JDBC URL of the database all nodes share
	// (jdbc:postgresql://127.0.0.1:5432/keycloak).
	DBURL string
	// DBUser and DBPassword log into it (the password goes by environment,
	// not on the command line).
	DBUser, DBPassword string
	// DBPoolMaxSize bounds the node's connections; default 10 (Keycloak's
	// 100 is for a server of its own, not two nodes and the tests on one
	// small PostgreSQL).
	DBPoolMaxSize int
	// Hostname is the URL every node puts into tokens (--hostname): one
	// cluster has one issuer. Backchannel URLs follow the request
	// (--hostname-backchannel-dynamic), so a service can talk to its own
	// node. Empty: each node is its own address.
	Hostname string
	// Production runs `start` (what compose.scale.yaml runs) instead of
	// `start-dev`.
	Production bool
	// SkipImport leaves the realm files alone: a node that joins a database
	// the first node already filled.
	SkipImport bool
	// BindPort is the cluster transport's port; 0 picks one (see
	// FreeClusterPort).
	BindPort int
}

// fdSockOffset is the distance of JGroups' failure detection port (FD_SOCK2)
// from the transport's bind port in Keycloak's stacks (7800 and 57800).
const fdSockOffset = 50000

// FreeClusterPort picks a cluster transport port on 127.0.0.1 that is free
// and whose failure-detection port (+50000) is free and valid too: the
// kernel's free ports (32768 and up) would put that beyond 65535. The range
// keeps both out of Linux's default ephemeral range (32768-60999).
func FreeClusterPort() (int, error) {
	for range 50 {
		p := 11000 + rand.IntN(4000)
		if portFree(p) && portFree(p+fdSockOffset) {
			return p, nil
		}
	}
	return 0, errors.New("launcher: no free cluster port pair (p, p+50000) in 11000-15000")
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// processArgs is kc.sh's command line for opts (ports already chosen).
func processArgs(opts Options) []string {
	c := opts.Cluster
	command := "start-dev"
	if c != nil && c.Production {
		command = "start"
	}
	args := []string{command}
	if c == nil || !c.SkipImport {
		args = append(args, "--import-realm")
	}
	if c == nil {
		args = append(args, "--db=dev-mem")
	} else {
		pool := c.DBPoolMaxSize
		if pool == 0 {
			pool = 10
		}
		args = append(args,
			"--db=postgres",
			"--db-url="+c.DBURL,
			"--db-username="+c.DBUser,
			"--db-pool-max-size="+strconv.Itoa(pool),
			"--cache=ispn",
			"--cache-stack=jdbc-ping",
			"--cache-embedded-network-bind-address=127.0.0.1",
			"--cache-embedded-network-bind-port="+strconv.Itoa(c.BindPort),
		)
		if c.Production {
			args = append(args, "--http-enabled=true")
		}
		if c.Hostname != "" {
			args = append(args, "--hostname="+c.Hostname, "--hostname-backchannel-dynamic=true")
		} else if c.Production {
			args = append(args, "--hostname-strict=false")
		}
	}
	args = append(args,
		"--http-host="+or(opts.BindHost, "127.0.0.1"),
		"--http-port="+strconv.Itoa(opts.HTTPPort),
		"--http-management-port="+strconv.Itoa(opts.ManagementPort),
		"--health-enabled=true",
		"--metrics-enabled=true",
	)
	return append(args, opts.ExtraArgs...)
}

// clusterEnv is the environment a cluster node needs beyond its arguments.
func clusterEnv(c *Cluster) []string {
	if c == nil {
		return nil
	}
	return []string{"KC_DB_PASSWORD=" + c.DBPassword}
}

func (c *Cluster) check() error {
	if c == nil {
		return nil
	}
	if c.DBURL == "" || c.DBUser == "" {
		return fmt.Errorf("launcher: a cluster node needs DBURL and DBUser")
	}
	return nil
}
