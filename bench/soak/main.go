// Command soak is the flapping half of bench/soak.sh: it serves the HTTP
// backends that CoreDNS's health checks probe, takes some of them down and up
// again and again, and meanwhile queries CoreDNS and checks every answer
// against what it knows about the backends:
//
//   - no SERVFAIL (nor any rcode but NOERROR), no empty answer;
//   - every value is a configured one, none twice;
//   - no value whose backend has been down longer than the detection window
//     (failure_threshold probes, each at most interval + 10% jitter apart,
//     plus the last one's timeout, plus a margin) when the query was sent,
//     and is still down when the answer arrives.
//
// Everything is on 127.0.0.0/8: backend i listens on 127.0.0.i:PORT.
// It stops by itself after -duration and exits 1 on any violation.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

func main() {
	var (
		n         = flag.Int("backends", 12, "backends, on 127.0.0.1 .. 127.0.0.N")
		port      = flag.Int("port", 18281, "port of every backend")
		down      = flag.Int("down", 3, "backends down at once, at most")
		dnsAddr   = flag.String("dns", "127.0.0.1:15553", "CoreDNS to query (loopback)")
		readyURL  = flag.String("ready", "", "CoreDNS ready plugin URL to wait for (loopback); empty: wait for an answer")
		name      = flag.String("name", "www.example.org.", "name to query (A)")
		duration  = flag.Duration("duration", 60*time.Second, "how long to flap and check")
		interval  = flag.Duration("interval", time.Second, "health-check interval configured in CoreDNS")
		timeout   = flag.Duration("timeout", 500*time.Millisecond, "health-check timeout configured in CoreDNS")
		threshold = flag.Int("failure-threshold", 2, "failure_threshold configured in CoreDNS")
		margin    = flag.Duration("margin", 500*time.Millisecond, "added to the detection window for scheduling delays under load")
		checkers  = flag.Int("checkers", 2, "concurrent checking clients")
		minDown   = flag.Duration("min-down", 2*time.Second, "shortest outage")
		maxDown   = flag.Duration("max-down", 8*time.Second, "longest outage")
	)
	flag.Parse()
	if *down >= *n || *n > 254 {
		fatalf("need 0 < down < backends <= 254")
	}
	if h, _, err := net.SplitHostPort(*dnsAddr); err != nil || !net.ParseIP(h).IsLoopback() {
		fatalf("-dns %s: must be a loopback address", *dnsAddr)
	}
	if *readyURL != "" {
		if u, err := url.Parse(*readyURL); err != nil || net.ParseIP(u.Hostname()) == nil || !net.ParseIP(u.Hostname()).IsLoopback() {
			fatalf("-ready %s: must be a URL on a loopback address", *readyURL)
		}
	}
	// The last probe that can still pass starts just before the outage; then
	// failure_threshold probes, each up to interval + 10% later, the last
	// one failing by its timeout at worst.
	window := time.Duration(*threshold)*(*interval+*interval/10) + *timeout + *margin

	s := &soak{values: map[string]*backend{}}
	for i := 1; i <= *n; i++ {
		b := &backend{ip: fmt.Sprintf("127.0.0.%d", i), addr: fmt.Sprintf("127.0.0.%d:%d", i, *port)}
		if err := b.up(); err != nil {
			fatalf("backend %s: %v", b.addr, err)
		}
		s.backends = append(s.backends, b)
		s.values[b.ip] = b
	}
	fmt.Printf("backends up: %d on 127.0.0.1..%d:%d\n", *n, *n, *port)

	if err := waitReady(*readyURL, *dnsAddr, *name, 60*time.Second); err != nil {
		fatalf("CoreDNS not ready: %v", err)
	}
	fmt.Printf("checking: %s A at %s for %s, %d of %d backends flapping, detection window %s\n",
		*name, *dnsAddr, *duration, *down, *n, window)

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var wg sync.WaitGroup
	for range *down {
		wg.Add(1)
		go func() { defer wg.Done(); s.flap(ctx, *minDown, *maxDown) }()
	}
	for i := range *checkers {
		wg.Add(1)
		go func() { defer wg.Done(); s.check(ctx, *dnsAddr, *name, window, i) }()
	}
	wg.Wait()
	for _, b := range s.backends {
		b.mu.Lock()
		b.stop()
		b.mu.Unlock()
	}
	if s.report(window) {
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "soak: "+format+"\n", args...)
	os.Exit(2)
}

// backend is one HTTP server that health checks probe; down means its
// listener and connections are closed, so probes get connection refused.
type backend struct {
	ip, addr string

	mu        sync.Mutex
	srv       *http.Server
	reserved  bool      // a flapper owns it
	downSince time.Time // zero while up
	outages   []*outage
}

// outage is one period a backend was down, and what the checkers saw of it.
type outage struct {
	from, to time.Time // to is zero while still down
	lastSeen time.Time // last answer holding the value while down
	backSeen time.Time // first answer holding it after it came back
}

func (b *backend) up() error {
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		return err
	}
	b.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("OK\n")) }),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go b.srv.Serve(ln)
	return nil
}

func (b *backend) stop() {
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

type soak struct {
	backends []*backend
	values   map[string]*backend // IP -> backend
	mu       sync.Mutex          // picks a backend to take down

	queries, servfails, otherRcodes, errs, empty, foreign, dups, violations atomic.Int64
	firstViolation, firstForeign                                            atomic.Pointer[string]
}

// flap takes a random up backend down for a random time, brings it back,
// waits, and again, until ctx ends.
func (s *soak) flap(ctx context.Context, minDown, maxDown time.Duration) {
	for ctx.Err() == nil {
		s.mu.Lock()
		var free []*backend
		for _, b := range s.backends {
			b.mu.Lock()
			if !b.reserved {
				free = append(free, b)
			}
			b.mu.Unlock()
		}
		b := free[rand.IntN(len(free))]
		b.mu.Lock()
		b.reserved = true
		b.stop()
		now := time.Now()
		b.downSince = now
		b.outages = append(b.outages, &outage{from: now})
		b.mu.Unlock()
		s.mu.Unlock()

		sleep(ctx, minDown+rand.N(maxDown-minDown+1))

		b.mu.Lock()
		if err := b.up(); err != nil {
			b.mu.Unlock()
			fatalf("relisten on %s: %v", b.addr, err)
		}
		b.downSince = time.Time{}
		b.outages[len(b.outages)-1].to = time.Now()
		b.mu.Unlock()
		// Stay up long enough to be seen healthy again before this slot
		// may pick it once more.
		sleep(ctx, time.Second+rand.N(3*time.Second))
		b.mu.Lock()
		b.reserved = false
		b.mu.Unlock()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// check queries name continuously (UDP, every 10th over TCP) and checks each
// answer.
func (s *soak) check(ctx context.Context, addr, name string, window time.Duration, id int) {
	udp := &dns.Client{Net: "udp", Timeout: time.Second}
	tcp := &dns.Client{Net: "tcp", Timeout: time.Second}
	for i := 0; ctx.Err() == nil; i++ {
		c := udp
		if (i+id)%10 == 0 {
			c = tcp
		}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		sent := time.Now()
		r, _, err := c.Exchange(m, addr)
		got := time.Now()
		s.queries.Add(1)
		if err != nil {
			s.errs.Add(1)
			continue
		}
		switch r.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeServerFailure:
			s.servfails.Add(1)
			continue
		default:
			s.otherRcodes.Add(1)
			continue
		}
		if len(r.Answer) == 0 {
			s.empty.Add(1)
			continue
		}
		var seen []string
		for _, rr := range r.Answer {
			a, ok := rr.(*dns.A)
			var b *backend
			if ok {
				b = s.values[a.A.String()]
			}
			if b == nil {
				s.foreign.Add(1)
				msg := fmt.Sprintf("%s in the answer:\n%s", rr, r)
				s.firstForeign.CompareAndSwap(nil, &msg)
				continue
			}
			ip := a.A.String()
			if slices.Contains(seen, ip) {
				s.dups.Add(1)
			}
			seen = append(seen, ip)
			b.mu.Lock()
			if !b.downSince.IsZero() {
				o := b.outages[len(b.outages)-1]
				if got.After(o.lastSeen) {
					o.lastSeen = got
				}
				if sent.Sub(b.downSince) > window {
					s.violations.Add(1)
					msg := fmt.Sprintf("%s served at %s, down since %s (%s before the query was sent)",
						ip, got.Format("15:04:05.000"), b.downSince.Format("15:04:05.000"), sent.Sub(b.downSince).Round(time.Millisecond))
					s.firstViolation.CompareAndSwap(nil, &msg)
				}
			} else if n := len(b.outages); n > 0 {
				if o := b.outages[n-1]; o.backSeen.IsZero() && sent.After(o.to) {
					o.backSeen = got
				}
			}
			b.mu.Unlock()
		}
	}
}

// report prints the counts and returns whether the soak failed.
func (s *soak) report(window time.Duration) bool {
	var detect, recover []time.Duration
	var outages, undetectable int
	for _, b := range s.backends {
		for _, o := range b.outages {
			if o.to.IsZero() {
				continue // cut by the end of the run
			}
			outages++
			if o.to.Sub(o.from) <= window {
				undetectable++ // too short to be required to disappear
				continue
			}
			d := time.Duration(0)
			if !o.lastSeen.IsZero() {
				d = o.lastSeen.Sub(o.from)
			}
			detect = append(detect, d)
			if !o.backSeen.IsZero() {
				recover = append(recover, o.backSeen.Sub(o.to))
			}
		}
	}
	fmt.Printf("checker: queries %d, servfails %d, other rcodes %d, timeouts/errors %d, empty answers %d, foreign values %d, duplicates %d, violations %d\n",
		s.queries.Load(), s.servfails.Load(), s.otherRcodes.Load(), s.errs.Load(), s.empty.Load(), s.foreign.Load(), s.dups.Load(), s.violations.Load())
	fmt.Printf("outages: %d completed (%d shorter than the window)\n", outages, undetectable)
	fmt.Printf("last answer with a down value, after its outage began: %s (window %s)\n", stats(detect), window)
	fmt.Printf("first answer with a revived value, after it came back: %s\n", stats(recover))
	if p := s.firstForeign.Load(); p != nil {
		fmt.Printf("first foreign value: %s\n", *p)
	}
	if p := s.firstViolation.Load(); p != nil {
		fmt.Printf("first violation: %s\n", *p)
	}
	failed := s.servfails.Load()+s.otherRcodes.Load()+s.empty.Load()+s.foreign.Load()+s.dups.Load()+s.violations.Load() > 0
	if s.queries.Load() == 0 || outages-undetectable == 0 {
		fmt.Println("nothing was checked")
		failed = true
	}
	if failed {
		fmt.Println("RESULT: FAIL")
	} else {
		fmt.Println("RESULT: PASS")
	}
	return failed
}

func stats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	slices.Sort(ds)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("n %d, min %s, median %s, max %s", len(ds), r(ds[0]), r(ds[len(ds)/2]), r(ds[len(ds)-1]))
}

// waitReady waits for the ready plugin's 200 (every check has a first
// result), or, without one, for an answer to name.
func waitReady(readyURL, addr, name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if readyURL != "" {
			resp, err := http.Get(readyURL)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		} else {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			if r, err := dns.Exchange(m, addr); err == nil && len(r.Answer) > 0 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("timed out")
}
