// Package benchkit is what the benchmark programs under bench/ share: loopback
// backends for health checks, building and running the project's CoreDNS
// pinned to a core, DNS queries and a Prometheus scrape. Everything listens
// on, probes and queries 127.0.0.0/8 only.
package benchkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// IP is the i-th of many distinct loopback addresses under 127.<net>.0.0/16
// (i < 62,500), never a .0 or .255.
func IP(net, i int) string { return fmt.Sprintf("127.%d.%d.%d", net, i/250, 1+i%250) }

// Backends are TCP listeners on loopback addresses that accept and close every
// connection: healthy targets for `protocol tcp` checks. Kill and Revive make
// one refuse connections and take them again, on the same address.
type Backends struct {
	mu  sync.Mutex
	lns map[string]net.Listener
	wg  sync.WaitGroup
}

// Listen opens a backend on every address.
func Listen(addrs []string) (*Backends, error) {
	b := &Backends{lns: map[string]net.Listener{}}
	for _, a := range addrs {
		if err := b.Revive(a); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// Revive (re)opens the listener on addr.
func (b *Backends) Revive(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.lns[addr] = ln
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return nil
}

// Kill closes the listener on addr: connections to it are refused.
func (b *Backends) Kill(addr string) {
	b.mu.Lock()
	ln := b.lns[addr]
	delete(b.lns, addr)
	b.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// Close closes every listener.
func (b *Backends) Close() {
	b.mu.Lock()
	for a, ln := range b.lns {
		ln.Close()
		delete(b.lns, a)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

var (
	cleanupMu sync.Mutex
	cleanups  []func()
	logs      []string // CoreDNS logs, shown by Fatalf
)

// OnExit registers f to run, last first, when Exit or Fatalf ends the program.
func OnExit(f func()) {
	cleanupMu.Lock()
	cleanups = append(cleanups, f)
	cleanupMu.Unlock()
}

// Exit runs the OnExit functions and exits with code.
func Exit(code int) {
	cleanupMu.Lock()
	fs := cleanups
	cleanups = nil
	cleanupMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	os.Exit(code)
}

// Fatalf prints the message, stops what OnExit registered (CoreDNS, the
// backends, the temporary directory) and exits: no process is left behind.
func Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	cleanupMu.Lock()
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			fmt.Fprintf(os.Stderr, "last lines of %s:\n%s\n", l, strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	}
	cleanupMu.Unlock()
	Exit(1)
}

// CheckFree fails when something already listens on the UDP address:
// CoreDNS sets SO_REUSEPORT, so a stale server on the same port would
// silently take a share of the queries.
func CheckFree(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("%s is in use (a CoreDNS left running?): %w", addr, err)
	}
	return pc.Close()
}

// Build compiles ./cmd/coredns of the module at root into dir and returns the
// binary's path.
func Build(root, dir string) (string, error) {
	bin := filepath.Join(dir, "coredns")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/coredns")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building coredns: %w", err)
	}
	return bin, nil
}

// ModuleRoot finds the directory of go.mod from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found: run from the repository")
		}
		dir = parent
	}
}

// CoreDNS is a running CoreDNS process.
type CoreDNS struct {
	Cmd     *exec.Cmd
	Start   time.Time // when the process was started
	Conf    string    // the Corefile's path
	LogPath string
	logFile *os.File

	stopOnce sync.Once
}

// Run starts bin with the Corefile text written to dir, pinned to cpu with
// taskset when cpu >= 0. Its output goes to dir/coredns-N.log. Exit stops it.
func Run(bin, dir, corefile string, cpu int) (*CoreDNS, error) {
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
		return nil, err
	}
	cleanupMu.Lock()
	logPath := filepath.Join(dir, fmt.Sprintf("coredns-%d.log", len(logs)+1))
	logs = append(logs, logPath)
	cleanupMu.Unlock()
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := []string{bin, "-conf", conf}
	if cpu >= 0 {
		args = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = lf, lf
	c := &CoreDNS{Cmd: cmd, Conf: conf, LogPath: logPath, logFile: lf}
	c.Start = time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	OnExit(c.Stop)
	return c, nil
}

// Pid is the CoreDNS process id (taskset execs it, so it is the same).
func (c *CoreDNS) Pid() int { return c.Cmd.Process.Pid }

// Stop ends the process (SIGTERM, then SIGKILL after 5 s) and waits for it.
// It may be called more than once.
func (c *CoreDNS) Stop() {
	c.stopOnce.Do(c.stop)
}

func (c *CoreDNS) stop() {
	c.Cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { c.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.Cmd.Process.Kill()
		<-done
	}
	c.logFile.Close()
}

// Query asks addr (UDP) for name and type once.
func Query(addr, name string, qtype uint16, timeout time.Duration) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: "udp", Timeout: timeout}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// WaitAnswer polls addr until ok accepts a reply to name/type, and returns
// when that happened.
func WaitAnswer(ctx context.Context, addr, name string, qtype uint16, ok func(*dns.Msg) bool) (time.Time, error) {
	for {
		r, err := Query(addr, name, qtype, 50*time.Millisecond)
		if err == nil && ok(r) {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("no answer for %s from %s: %w (last error %v)", name, addr, ctx.Err(), err)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// HasAnswer accepts any NOERROR reply with at least one answer.
func HasAnswer(r *dns.Msg) bool { return r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 }

// Scrape reads a Prometheus text endpoint and sums the samples of each metric
// whose name is asked for (over all label sets). The samples with the label
// result="failure" are also summed under NAME+":failure".
func Scrape(url string, names ...string) (out map[string]float64, err error) {
	// A loaded CoreDNS may cut a large scrape short: try again.
	for range 3 {
		if out, err = scrape(url, names); err == nil {
			return out, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return nil, err
}

func scrape(url string, names []string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		if !want[name] {
			continue
		}
		f := strings.Fields(line[len(name):])
		if i := strings.LastIndex(line, "}"); i >= 0 {
			f = strings.Fields(line[i+1:])
		}
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			out[name] += v
			if strings.Contains(line, `result="failure"`) {
				out[name+":failure"] += v
			}
		}
	}
	io.Copy(io.Discard, resp.Body)
	return out, sc.Err()
}

// Goroutines reads the number of goroutines from the pprof plugin at base
// (http://host:port).
func Goroutines(base string) (int, error) {
	resp, err := http.Get(base + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	// "goroutine profile: total 42"
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0, fmt.Errorf("unexpected goroutine profile %q", line)
	}
	return strconv.Atoi(f[len(f)-1])
}

// RSS is the resident set size of pid in bytes, from /proc.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// CPUSeconds is the user plus system CPU time of pid, from /proc.
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:]) // after "pid (comm) "
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64) // field 14, utime
	st, _ := strconv.ParseFloat(f[12], 64) // field 15, stime
	return (ut + st) / 100, nil            // USER_HZ is 100 on Linux
}

// Dnsperf runs dnsperf pinned to cpu against addr for d with the one query
// "name A", and returns queries per second and average latency.
func Dnsperf(dir, addr, name string, d time.Duration, cpu int) (qps float64, lat time.Duration, err error) {
	qf := filepath.Join(dir, "queries.txt")
	if err := os.WriteFile(qf, []byte(strings.TrimSuffix(name, ".")+" A\n"), 0o644); err != nil {
		return 0, 0, err
	}
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"-c", strconv.Itoa(cpu), "dnsperf", "-s", host, "-p", port, "-d", qf,
		"-l", strconv.Itoa(int(d.Seconds())), "-c", "8", "-q", "200", "-t", "2"}
	out, err := exec.Command("taskset", args...).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("dnsperf: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[0] == "Queries" && f[1] == "per" && f[2] == "second:":
			qps, _ = strconv.ParseFloat(f[3], 64)
		case len(f) >= 4 && f[0] == "Average" && f[1] == "Latency":
			s, _ := strconv.ParseFloat(f[3], 64)
			lat = time.Duration(s * float64(time.Second))
		}
	}
	if qps == 0 {
		return 0, 0, fmt.Errorf("no qps in dnsperf output: %s", out)
	}
	return qps, lat, nil
}
