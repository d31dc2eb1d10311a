// Command detect measures detection time: from the moment a backend dies
// (its listener closes, so connections are refused) to the moment its value
// leaves every answer. CoreDNS (pinned to CPU 0) serves two names, each with 4
// A values on backends of their own on 127.5.x.y, each value with a TCP check;
// max_answers 8, so every answer holds every healthy value:
//
//   - www (plain): interval 1s, timeout 500ms, failure_threshold 2;
//   - fast (fast_interval): interval 1s, fast_interval 100ms, timeout 50ms,
//     failure_threshold 3.
//
// Each trial kills one backend of a name at a random moment of the check
// cycle, queries every 5 ms until an answer lacks the value, checks that the
// following answers lack it too, then revives it and waits until it is served
// again.
//
//	go run ./bench/detect                       # 20 trials of each
//	go run ./bench/detect -trials 40 -only fast
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/multivalue-dns/coredns-multivalue/bench/internal/benchkit"
)

var (
	trials = flag.Int("trials", 20, "trials per scenario")
	only   = flag.String("only", "", "run one scenario: plain or fast (default both)")
	bin    = flag.String("coredns", "", "CoreDNS binary (default: build ./cmd/coredns)")
)

const (
	values      = 4
	dnsPort     = 15653
	backendPort = 18101
)

// scenario is one record set and the check its values carry.
type scenario struct {
	name  string // of the scenario
	qname string
	check string // the health_check block's options
	ips   []string
	addrs []string
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	scenarios := []*scenario{
		{name: "plain", qname: "www.example.org.", check: "interval 1s\n   timeout 500ms\n   failure_threshold 2"},
		{name: "fast", qname: "fast.example.org.", check: "interval 1s\n   fast_interval 100ms\n   timeout 50ms\n   failure_threshold 3"},
	}
	if *only != "" {
		scenarios = slices.DeleteFunc(scenarios, func(s *scenario) bool { return s.name != *only })
		if len(scenarios) == 0 {
			benchkit.Fatalf("-only %q: want plain or fast", *only)
		}
	}
	dir, err := os.MkdirTemp("", "mv-detect-")
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

	var all []string
	corefile := fmt.Sprintf("example.org:%d {\n bind 127.0.0.1\n multivalue {\n  max_answers 8\n", dnsPort)
	for si, sc := range scenarios {
		for i := range values {
			ip := benchkit.IP(5, si*values+i)
			sc.ips = append(sc.ips, ip)
			sc.addrs = append(sc.addrs, net.JoinHostPort(ip, strconv.Itoa(backendPort)))
		}
		all = append(all, sc.addrs...)
		corefile += fmt.Sprintf("  health_check %s {\n   protocol tcp\n   port %d\n   %s\n  }\n", sc.name, backendPort, sc.check)
		corefile += fmt.Sprintf("  records %s A {\n   health_check %s\n", sc.qname, sc.name)
		for _, ip := range sc.ips {
			corefile += "   " + ip + "\n"
		}
		corefile += "  }\n"
	}
	corefile += " }\n}\n"
	backends, err := benchkit.Listen(all)
	if err != nil {
		benchkit.Fatalf("%v", err)
	}
	benchkit.OnExit(backends.Close)
	if err := benchkit.CheckFree(fmt.Sprintf("127.0.0.1:%d", dnsPort)); err != nil {
		benchkit.Fatalf("%v", err)
	}
	c, err := benchkit.Run(*bin, dir, corefile, 0)
	if err != nil {
		benchkit.Fatalf("%v", err)
	}
	defer c.Stop()
	addr := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	for _, sc := range scenarios {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := benchkit.WaitAnswer(ctx, addr, sc.qname, dns.TypeA, func(m *dns.Msg) bool { return len(m.Answer) == values })
		cancel()
		if err != nil {
			benchkit.Fatalf("%v", err)
		}
	}
	time.Sleep(2500 * time.Millisecond) // every check has its first result

	results := map[string][]time.Duration{}
	for _, sc := range scenarios {
		for t := range *trials {
			victim := t % values
			time.Sleep(rand.N(time.Second)) // a random moment of the check cycle
			died := time.Now()
			backends.Kill(sc.addrs[victim])
			gone, err := waitServed(addr, sc.qname, sc.ips[victim], false, 10*time.Second)
			if err != nil {
				benchkit.Fatalf("%s trial %d: %v", sc.name, t+1, err)
			}
			d := gone.Sub(died)
			// Gone from every answer: the next 20 answers lack it as well.
			for range 20 {
				if served(addr, sc.qname, sc.ips[victim]) {
					benchkit.Fatalf("%s trial %d: %s came back without being revived", sc.name, t+1, sc.ips[victim])
				}
				time.Sleep(5 * time.Millisecond)
			}
			results[sc.name] = append(results[sc.name], d)
			log.Printf("%s trial %2d: %s gone from answers %v after its backend died", sc.name, t+1, sc.ips[victim], d.Round(time.Millisecond))
			if err := backends.Revive(sc.addrs[victim]); err != nil {
				benchkit.Fatalf("%v", err)
			}
			if _, err := waitServed(addr, sc.qname, sc.ips[victim], true, 10*time.Second); err != nil {
				benchkit.Fatalf("%s trial %d: revive: %v", sc.name, t+1, err)
			}
		}
	}
	fmt.Printf("\ndetection time, %d trials each:\n", *trials)
	for _, sc := range scenarios {
		times := results[sc.name]
		slices.Sort(times)
		fmt.Printf("  %-6s %-58s median %v  p95 %v  min %v  max %v\n", sc.name, "("+strings.ReplaceAll(sc.check, "\n   ", ", ")+")",
			pct(times, 50), pct(times, 95), times[0].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
	}
}

// served reports whether ip is in an answer for qname.
func served(addr, qname, ip string) bool {
	r, err := benchkit.Query(addr, qname, dns.TypeA, time.Second)
	if err != nil {
		benchkit.Fatalf("query: %v", err)
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok && a.A.String() == ip {
			return true
		}
	}
	return false
}

// waitServed queries every 5 ms until ip is (want) or is not served, and
// returns when that was first seen.
func waitServed(addr, qname, ip string, want bool, limit time.Duration) (time.Time, error) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		if served(addr, qname, ip) == want {
			return time.Now(), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("%s still served=%v after %v", ip, !want, limit)
}

// pct is the p-th percentile (nearest rank) of sorted ds.
func pct(ds []time.Duration, p int) time.Duration {
	i := (p*len(ds)+99)/100 - 1
	return ds[max(i, 0)].Round(time.Millisecond)
}
