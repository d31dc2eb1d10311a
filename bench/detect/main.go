// Command detect measures detection time: from the moment a backend dies
// (its listener closes, so connections are refused) to the moment its value
// leaves every answer. CoreDNS (pinned to CPU 0) serves www.example.org with 4
// A values on 127.5.0.x, each with a TCP check (interval 1s, timeout 500ms,
// failure_threshold 2); max_answers 8, so every answer holds every healthy
// value. Each trial kills one backend at a random moment of the check cycle,
// queries every 5 ms until an answer lacks the value, checks that the
// following answers lack it too, then revives it and waits until it is
// served again.
//
//	go run ./bench/detect               # 20 trials
//	go run ./bench/detect -trials 40
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
	"time"

	"github.com/miekg/dns"

	"github.com/multivalue-dns/coredns-multivalue/bench/internal/benchkit"
)

var (
	trials = flag.Int("trials", 20, "trials")
	bin    = flag.String("coredns", "", "CoreDNS binary (default: build ./cmd/coredns)")
)

const (
	values      = 4
	dnsPort     = 15653
	backendPort = 18101
	qname       = "www.example.org."
)

func main() {
	flag.Parse()
	log.SetFlags(0)
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

	ips := make([]string, values)
	addrs := make([]string, values)
	for i := range ips {
		ips[i] = benchkit.IP(5, i)
		addrs[i] = net.JoinHostPort(ips[i], strconv.Itoa(backendPort))
	}
	backends, err := benchkit.Listen(addrs)
	if err != nil {
		benchkit.Fatalf("%v", err)
	}
	benchkit.OnExit(backends.Close)

	corefile := fmt.Sprintf(`example.org:%d {
 bind 127.0.0.1
 multivalue {
  max_answers 8
  health_check tcp {
   protocol tcp
   port %d
   interval 1s
   timeout 500ms
   failure_threshold 2
  }
  records www A {
   health_check tcp
`, dnsPort, backendPort)
	for _, ip := range ips {
		corefile += "   " + ip + "\n"
	}
	corefile += "  }\n }\n}\n"
	if err := benchkit.CheckFree(fmt.Sprintf("127.0.0.1:%d", dnsPort)); err != nil {
		benchkit.Fatalf("%v", err)
	}
	c, err := benchkit.Run(*bin, dir, corefile, 0)
	if err != nil {
		benchkit.Fatalf("%v", err)
	}
	defer c.Stop()
	addr := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := benchkit.WaitAnswer(ctx, addr, qname, dns.TypeA, func(m *dns.Msg) bool { return len(m.Answer) == values }); err != nil {
		benchkit.Fatalf("%v", err)
	}
	time.Sleep(2500 * time.Millisecond) // every check has its first result

	var times []time.Duration
	for t := range *trials {
		victim := t % values
		time.Sleep(rand.N(time.Second)) // a random moment of the check cycle
		died := time.Now()
		backends.Kill(addrs[victim])
		gone, err := waitServed(addr, ips[victim], false, 10*time.Second)
		if err != nil {
			benchkit.Fatalf("trial %d: %v", t+1, err)
		}
		d := gone.Sub(died)
		// Gone from every answer: the next 20 answers lack it as well.
		for range 20 {
			if served(addr, ips[victim]) {
				benchkit.Fatalf("trial %d: %s came back without being revived", t+1, ips[victim])
			}
			time.Sleep(5 * time.Millisecond)
		}
		times = append(times, d)
		log.Printf("trial %2d: %s gone from answers %v after its backend died", t+1, ips[victim], d.Round(time.Millisecond))
		if err := backends.Revive(addrs[victim]); err != nil {
			benchkit.Fatalf("%v", err)
		}
		if _, err := waitServed(addr, ips[victim], true, 10*time.Second); err != nil {
			benchkit.Fatalf("trial %d: revive: %v", t+1, err)
		}
	}
	slices.Sort(times)
	fmt.Printf("\ndetection time (interval 1s, timeout 500ms, failure_threshold 2), %d trials:\n", len(times))
	fmt.Printf("  median %v  p95 %v  min %v  max %v\n", pct(times, 50), pct(times, 95), times[0].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
}

// served reports whether ip is in an answer for qname.
func served(addr, ip string) bool {
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
func waitServed(addr, ip string, want bool, limit time.Duration) (time.Time, error) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		if served(addr, ip) == want {
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
