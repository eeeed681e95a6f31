package ecosystem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Available says why the ecosystem cannot be built here, or nil: it needs
// root (network namespaces, veth pairs, a bridge) and iproute2's ip.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("the federation harness needs root: it builds network namespaces (ip netns add), veth pairs and a bridge so that every organisation has its own host names and addresses")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the federation harness needs iproute2's ip (apt-get install iproute2): " + err.Error())
	}
	return nil
}

// network is the ecosystem's internet: a hub namespace holding a bridge,
// and one namespace per organisation joined to it by a veth pair. Nothing
// touches the host's own network: the host has no interface, address or
// route in it, so the organisations' addresses (public-looking ones: the
// claims-token policy refuses private addresses, as it must) are reachable
// only from inside.
type network struct {
	id     string // short, unique per run: prefixes every name
	hub    string
	prefix string // "11.0.77."
	n      int
	nss    []string
}

// ip runs iproute2.
func ip(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func newNetwork(id string) (*network, error) {
	n := &network{id: id, hub: "uw" + id + "hub", prefix: "11.0.77."}
	for _, args := range [][]string{
		{"netns", "add", n.hub},
		{"-n", n.hub, "link", "set", "lo", "up"},
		{"-n", n.hub, "link", "add", "br0", "type", "bridge"},
		{"-n", n.hub, "link", "set", "br0", "up"},
	} {
		if err := ip(args...); err != nil {
			n.close()
			return nil, err
		}
	}
	return n, nil
}

// addNS makes the namespace of one organisation and returns its name and
// address.
func (n *network) addNS(label string) (string, string, error) {
	n.n++
	ns := "uw" + n.id + label
	addr := fmt.Sprintf("%s%d", n.prefix, 10+n.n)
	hostEnd, nsEnd := fmt.Sprintf("uw%sh%d", n.id, n.n), fmt.Sprintf("uw%sn%d", n.id, n.n)
	if err := ip("netns", "add", ns); err != nil {
		return "", "", err
	}
	n.nss = append(n.nss, ns)
	for _, args := range [][]string{
		{"link", "add", hostEnd, "netns", n.hub, "type", "veth", "peer", "name", nsEnd, "netns", ns},
		{"-n", n.hub, "link", "set", hostEnd, "master", "br0", "up"},
		{"-n", ns, "addr", "add", addr + "/24", "dev", nsEnd},
		{"-n", ns, "link", "set", nsEnd, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			return "", "", err
		}
	}
	return ns, addr, nil
}

// writeHosts gives every namespace the same hosts file: the ecosystem's
// DNS. ip netns exec bind-mounts /etc/netns/<ns>/hosts over /etc/hosts in
// the processes it starts, Go's and Java's resolvers both read it.
func (n *network) writeHosts(lines []string) error {
	// The machine's own name too: the namespaces share its UTS name, and
	// Java asks for it (InetAddress.getLocalHost) at start.
	self := "localhost"
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		self += " " + h
	}
	body := "127.0.0.1 " + self + "\n::1 localhost\n" + strings.Join(lines, "\n") + "\n"
	for _, ns := range n.nss {
		dir := filepath.Join("/etc/netns", ns)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// close removes every namespace (their veth ends and the bridge go with
// them) and the hosts files; it keeps going past errors.
func (n *network) close() error {
	var errs []error
	for _, ns := range append(n.nss, n.hub) {
		if err := ip("netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
		if ns != n.hub {
			if err := os.RemoveAll(filepath.Join("/etc/netns", ns)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	n.nss = nil
	return errors.Join(errs...)
}

// inNS runs f on a thread that has entered namespace ns: a socket made
// there (a dial, a listener) stays in that namespace, whatever thread uses
// it later. The thread is thrown away afterwards (the goroutine ends
// locked), so no other goroutine ever runs in ns.
func inNS(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		fd, err := unix.Open(filepath.Join("/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- fmt.Errorf("namespace %s: %w", ns, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			done <- fmt.Errorf("entering namespace %s: %w", ns, err)
			return
		}
		done <- f()
	}()
	return <-done
}

// dialer dials from inside namespace ns (address literals only: names are
// resolved by the caller's map, never by the host's DNS).
func dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNS(ns, func() error {
			var err error
			c, err = (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// listen listens on addr inside namespace ns.
func listen(ns, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNS(ns, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}
