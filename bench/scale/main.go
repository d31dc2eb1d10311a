// Command scale runs CoreDNS with one record set of 10,000 values, each with a
// TCP health check (interval 10 s: 1,000 probes a second) against real
// listeners on 127.3.x.y, while dnsperf loads it, and compares with the same
// values without checks. It prints the qps ratio (checks on / off), RSS,
// goroutines, probes per second, CPU seconds, and the start and reload times.
//
// CoreDNS is pinned to CPU 0; this program (the backends) and dnsperf to CPU 1.
// Rounds alternate checks off and on; medians are reported.
//
//	go run ./bench/scale                  # 10,000 values, 2 rounds of 15 s
//	go run ./bench/scale -n 1000 -rounds 1 -duration 5s
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/multivalue-dns/coredns-multivalue/bench/internal/benchkit"
)

var (
	n        = flag.Int("n", 10000, "values (each with its own backend and check)")
	interval = flag.Duration("interval", 10*time.Second, "check interval")
	duration = flag.Duration("duration", 15*time.Second, "dnsperf run per round")
	rounds   = flag.Int("rounds", 2, "rounds (each: checks off, then on)")
	reloads  = flag.Int("reloads", 3, "reloads timed per round with checks on")
	bin      = flag.String("coredns", "", "CoreDNS binary (default: build ./cmd/coredns)")
)

const (
	dnsPort     = 15453
	metricsPort = 15491
	pprofPort   = 15492
	backendPort = 18091
	qname       = "www.example.org."
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	pinSelf()

	dir, err := os.MkdirTemp("", "mv-scale-")
	if err != nil {
		benchkit.Fatalf("%v", err)
	}
	benchkit.OnExit(func() { os.RemoveAll(dir) })
	defer benchkit.Exit(0)
	if *bin == "" {
		root, err := benchkit.ModuleRoot()
		if err != nil {
			benchkit.Fatalf("%v", err)
		}
		if *bin, err = benchkit.Build(root, dir); err != nil {
			benchkit.Fatalf("%v", err)
		}
	}

	addrs := make([]string, *n)
	for i := range addrs {
		addrs[i] = net.JoinHostPort(benchkit.IP(3, i), strconv.Itoa(backendPort))
	}
	backends, err := benchkit.Listen(addrs)
	if err != nil {
		benchkit.Fatalf("backends: %v (raise ulimit -n?)", err)
	}
	benchkit.OnExit(backends.Close)
	log.Printf("%d backends listening on 127.3.x.y:%d", *n, backendPort)

	var off, on []result
	for r := 1; r <= *rounds; r++ {
		off = append(off, round(dir, false))
		on = append(on, round(dir, true))
	}
	report(off, on)
}

// pinSelf re-executes the program under `taskset -c 1`, so that it and the
// processes it starts (but CoreDNS, pinned to 0) share CPU 1.
func pinSelf() {
	if os.Getenv("MV_SCALE_PINNED") != "" {
		return
	}
	self, err := os.Executable()
	if err != nil {
		benchkit.Fatalf("%v", err)
	}
	cmd := exec.Command("taskset", append([]string{"-c", "1", self}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), "MV_SCALE_PINNED=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		benchkit.Fatalf("%v", err)
	}
	os.Exit(0)
}

func corefile(checks bool, gen int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "example.org:%d {\n bind 127.0.0.1\n prometheus 127.0.0.1:%d\n pprof 127.0.0.1:%d\n multivalue {\n", dnsPort, metricsPort, pprofPort)
	fmt.Fprintf(&b, "  health_check tcp {\n   protocol tcp\n   port %d\n   interval %s\n   timeout 2s\n  }\n", backendPort, *interval)
	fmt.Fprintf(&b, "  records marker TXT gen-%d\n", gen)
	b.WriteString("  records www A {\n")
	if checks {
		b.WriteString("   health_check tcp\n")
	}
	for i := range *n {
		fmt.Fprintf(&b, "   %s\n", benchkit.IP(3, i))
	}
	b.WriteString("  }\n }\n}\n")
	return b.String()
}

type result struct {
	checks     bool
	start      time.Duration   // process start to first answer
	startCPU   float64         // CPU seconds CoreDNS used until then
	reloads    []time.Duration // SIGUSR1 to the new config answering
	qps        float64
	latency    time.Duration
	rss        int64   // bytes, after the load
	goroutines float64 // after the load
	maxGor     int     // most seen during the load (sampled every 2 s)
	probesPS   float64 // probes per second during the load
	failures   float64 // failed probes during the load
	cpu        float64 // CPU seconds of CoreDNS during the load
}

func round(dir string, checks bool) result {
	res := result{checks: checks}
	addr := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	if err := benchkit.CheckFree(fmt.Sprintf("127.0.0.1:%d", dnsPort)); err != nil {
		benchkit.Fatalf("%v", err)
	}
	c, err := benchkit.Run(*bin, dir, corefile(checks, 1), 0)
	if err != nil {
		benchkit.Fatalf("%v", err)
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t, err := benchkit.WaitAnswer(ctx, addr, qname, dns.TypeA, benchkit.HasAnswer)
	if err != nil {
		benchkit.Fatalf("%v", err)
	}
	res.start = t.Sub(c.Start)
	res.startCPU, _ = benchkit.CPUSeconds(c.Pid())

	if checks {
		// Let the first probes (spread over 2 s) finish, then time reloads
		// that keep every check: the new instance must answer.
		time.Sleep(3 * time.Second)
		for g := 2; g < 2+*reloads; g++ {
			if err := os.WriteFile(c.Conf, []byte(corefile(true, g)), 0o644); err != nil {
				benchkit.Fatalf("%v", err)
			}
			begin := time.Now()
			c.Cmd.Process.Signal(syscall.SIGUSR1)
			want := fmt.Sprintf("gen-%d", g)
			t, err := benchkit.WaitAnswer(ctx, addr, "marker.example.org.", dns.TypeTXT, func(m *dns.Msg) bool {
				return len(m.Answer) == 1 && strings.Contains(m.Answer[0].String(), want)
			})
			if err != nil {
				benchkit.Fatalf("reload: %v", err)
			}
			res.reloads = append(res.reloads, t.Sub(begin))
			time.Sleep(time.Second)
		}
	}

	// Settle (first probes of a fresh start are spread over 2 s), then load.
	time.Sleep(3 * time.Second)
	names := []string{"coredns_multivalue_checks_total", "go_goroutines"}
	before, err := benchkit.Scrape(metricsURL, names...)
	if err != nil {
		benchkit.Fatalf("%v", err)
	}
	cpu0, _ := benchkit.CPUSeconds(c.Pid())
	t0 := time.Now()
	sampling := make(chan int)
	go func() { // sample the goroutines while dnsperf runs
		most := 0
		for time.Since(t0) < *duration {
			time.Sleep(2 * time.Second)
			if g, err := benchkit.Goroutines(fmt.Sprintf("http://127.0.0.1:%d", pprofPort)); err == nil {
				most = max(most, g)
			}
		}
		sampling <- most
	}()
	res.qps, res.latency, err = benchkit.Dnsperf(dir, addr, qname, *duration, 1)
	if err != nil {
		benchkit.Fatalf("%v", err)
	}
	elapsed := time.Since(t0)
	res.maxGor = <-sampling
	cpu1, _ := benchkit.CPUSeconds(c.Pid())
	res.cpu = cpu1 - cpu0
	after, err := benchkit.Scrape(metricsURL, names...)
	if err != nil {
		benchkit.Fatalf("%v", err)
	}
	res.rss, _ = benchkit.RSS(c.Pid())
	res.goroutines = after["go_goroutines"]
	probes := after["coredns_multivalue_checks_total"] - before["coredns_multivalue_checks_total"]
	res.probesPS = probes / elapsed.Seconds()
	res.failures = after["coredns_multivalue_checks_total:failure"] - before["coredns_multivalue_checks_total:failure"]
	log.Printf("checks %-5v start %v (%.2f CPU s) reloads %v qps %.0f latency %v rss %.0f MB goroutines %.0f (max %d) probes/s %.0f failed probes %.0f cpu %.1fs q/cpu-s %.0f",
		checks, res.start.Round(time.Millisecond), res.startCPU, roundAll(res.reloads), res.qps, res.latency.Round(time.Microsecond),
		float64(res.rss)/(1<<20), res.goroutines, res.maxGor, res.probesPS, res.failures, res.cpu, res.qpc())
	return res
}

// qpc is queries answered per CPU second of CoreDNS: on a shared machine,
// where CoreDNS does not always get its whole core, the cost per query.
func (r result) qpc() float64 { return r.qps * duration.Seconds() / r.cpu }

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func pick[T any](rs []result, f func(result) T) []T {
	out := make([]T, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func report(off, on []result) {
	qOff, qOn := median(pick(off, func(r result) float64 { return r.qps })), median(pick(on, func(r result) float64 { return r.qps }))
	var reloads []time.Duration
	for _, r := range on {
		reloads = append(reloads, r.reloads...)
	}
	fmt.Printf("\n%d values, TCP checks every %s (%.0f probes/s expected), %d rounds of %s, median:\n", *n, *interval, float64(*n)/interval.Seconds(), len(on), *duration)
	fmt.Printf("  qps checks off        %.0f\n", qOff)
	fmt.Printf("  qps checks on         %.0f  (ratio %.3f, drop %.1f%%)\n", qOn, qOn/qOff, 100*(1-qOn/qOff))
	cOff, cOn := median(pick(off, result.qpc)), median(pick(on, result.qpc))
	fmt.Printf("  queries per CPU s     off %.0f, on %.0f  (ratio %.3f, drop %.1f%%: the same, robust to a shared CPU)\n", cOff, cOn, cOn/cOff, 100*(1-cOn/cOff))
	fmt.Printf("  probes/s achieved     %.0f  (failed probes during load: %.0f)\n", median(pick(on, func(r result) float64 { return r.probesPS })), median(pick(on, func(r result) float64 { return r.failures })))
	fmt.Printf("  RSS checks on / off   %.0f MB / %.0f MB\n", float64(median(pick(on, func(r result) int64 { return r.rss })))/(1<<20), float64(median(pick(off, func(r result) int64 { return r.rss })))/(1<<20))
	fmt.Printf("  goroutines on / off   %.0f / %.0f after the load; most seen during it %d / %d\n",
		median(pick(on, func(r result) float64 { return r.goroutines })), median(pick(off, func(r result) float64 { return r.goroutines })),
		slices.Max(pick(on, func(r result) int { return r.maxGor })), slices.Max(pick(off, func(r result) int { return r.maxGor })))
	fmt.Printf("  CPU s on / off        %.1f / %.1f  (per %s of load)\n", median(pick(on, func(r result) float64 { return r.cpu })), median(pick(off, func(r result) float64 { return r.cpu })), *duration)
	fmt.Printf("  start on / off        %v / %v  (process start to first answer; CoreDNS CPU until then %.2f s / %.2f s)\n",
		median(pick(on, func(r result) time.Duration { return r.start })).Round(time.Millisecond), median(pick(off, func(r result) time.Duration { return r.start })).Round(time.Millisecond),
		median(pick(on, func(r result) float64 { return r.startCPU })), median(pick(off, func(r result) float64 { return r.startCPU })))
	if len(reloads) > 0 {
		fmt.Printf("  reload (checks kept)  median %v, max %v over %d  (SIGUSR1 to the new config answering)\n",
			median(reloads).Round(time.Millisecond), slices.Max(reloads).Round(time.Millisecond), len(reloads))
	}
}
