package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every
// Linux architecture Go supports (getconf CLK_TCK).
const clockTicks = 100

// procTimes reads utime+stime of one process from /proc/<pid>/stat.
func procTimes(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f, err := statFields(data)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return f.cpu, nil
}

type statInfo struct {
	pgrp int
	cpu  time.Duration // utime + stime
}

// statFields parses /proc/<pid>/stat: fields after the command name (which
// may hold spaces and parentheses, hence the last ')').
func statFields(data []byte) (statInfo, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return statInfo{}, fmt.Errorf("no command name")
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] state, f[1] ppid, f[2] pgrp, ... f[11] utime, f[12] stime
	if len(f) < 13 {
		return statInfo{}, fmt.Errorf("%d fields", len(f))
	}
	pgrp, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return statInfo{}, fmt.Errorf("malformed fields")
	}
	return statInfo{pgrp: pgrp, cpu: time.Duration(ut+st) * time.Second / clockTicks}, nil
}

// groupPIDs lists the live processes of a process group (Keycloak: kc.sh
// and its JVM).
func groupPIDs(pgid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		data, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		if f, err := statFields(data); err == nil && f.pgrp == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// component is a measured part of the flow: a process group (Keycloak), a
// process (a service) or this process (the client).
type component struct {
	Name  string
	PID   int  // 0: not measurable (external Keycloak without -keycloak-pid)
	Group bool // PID is a process group
	Self  bool
}

// cpu is the component's CPU time so far (a process that exited meanwhile
// no longer counts: the components live for the whole run).
func (c component) cpu() (time.Duration, bool) {
	switch {
	case c.Self:
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0, false
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
	case c.PID == 0:
		return 0, false
	case c.Group:
		var sum time.Duration
		pids := groupPIDs(c.PID)
		for _, p := range pids {
			if t, err := procTimes(p); err == nil {
				sum += t
			}
		}
		return sum, len(pids) > 0
	default:
		t, err := procTimes(c.PID)
		return t, err == nil
	}
}

// peakMemory is the component's peak resident set (VmHWM; for this process
// getrusage's maxrss), in bytes.
func (c component) peakMemory() (int64, bool) {
	switch {
	case c.Self:
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0, false
		}
		return ru.Maxrss * 1024, true // KiB on Linux
	case c.PID == 0:
		return 0, false
	case c.Group:
		var sum int64
		ok := false
		for _, p := range groupPIDs(c.PID) {
			if v, err := vmHWM(p); err == nil {
				sum += v
				ok = true
			}
		}
		return sum, ok
	default:
		v, err := vmHWM(c.PID)
		return v, err == nil
	}
}

// vmHWM reads the peak resident set size of a process.
func vmHWM(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return statusKiB(data, "VmHWM")
}

// statusKiB finds a "Name:   123 kB" line of /proc/<pid>/status or
// /proc/meminfo and returns bytes.
func statusKiB(data []byte, name string) (int64, error) {
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, name+":") {
			continue
		}
		f := strings.Fields(line[len(name)+1:])
		if len(f) < 1 {
			break
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		return v * 1024, nil
	}
	return 0, fmt.Errorf("no %s", name)
}

// machineCPU is the machine's busy and total CPU time (all cores) from the
// first line of /proc/stat: busy excludes idle and iowait.
func machineCPU() (busy, total time.Duration, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseProcStat(data)
}

func parseProcStat(data []byte) (busy, total time.Duration, err error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var sum, idle int64
	for i, s := range f[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		sum += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	tick := time.Second / clockTicks
	return time.Duration(sum-idle) * tick, time.Duration(sum) * tick, nil
}

// loadAvg reads the 1, 5 and 15 minute load averages.
func loadAvg() [3]float64 {
	var out [3]float64
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	f := strings.Fields(string(data))
	for i := 0; i < 3 && i < len(f); i++ {
		out[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return out
}

// Machine describes where the benchmark ran.
type Machine struct {
	NProc       int    `json:"nproc"`
	CPUModel    string `json:"cpu_model"`
	MemTotalMiB int64  `json:"mem_total_mib"`
	Kernel      string `json:"kernel"`
	GoVersion   string `json:"go_version"`
	Java        string `json:"java,omitempty"`
}

func describeMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(bytes.NewReader(data))
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		if v, err := statusKiB(data, "MemTotal"); err == nil {
			m.MemTotalMiB = v >> 20
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// tcpActiveOpens is the network namespace's count of TCP connects so far
// (/proc/net/snmp, Tcp ActiveOpens): every process of the machine's
// namespace, so other work on the machine shows in it too.
func tcpActiveOpens() int64 {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	return parseActiveOpens(data)
}

func parseActiveOpens(data []byte) int64 {
	var names []string
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "ActiveOpens" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}
