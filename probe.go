package multivalue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// prober runs one probe against a target. It returns whether the target passed
// and, either way, why, in a few words fit for a log line ("status 503",
// "connection refused"). ctx carries the check's timeout; a prober must not
// outlive it.
type prober interface {
	probe(ctx context.Context) (ok bool, reason string)
}

// probeResolver resolves host-name targets at probe time. nil means the
// system's; tests point it at a resolver on loopback.
var probeResolver *net.Resolver

// probeDialControl, when set, vets every address a probe connects to. nil in
// production; the tests set it to refuse anything outside loopback, so that a
// README example checking 192.0.2.1 can be started without a packet leaving.
var probeDialControl func(network, address string, c syscall.RawConn) error

// newProber builds the prober for a spec. Each probe opens a new connection: a
// health check tests that the endpoint accepts connections, and a kept-alive
// one would hide that it no longer does.
func newProber(s *checkSpec) prober {
	// No TCP keep-alive: the connection lives for one probe, and setting it
	// up costs system calls on every one.
	dialer := &net.Dialer{Resolver: probeResolver, Control: probeDialControl, KeepAlive: -1}
	switch s.protocol {
	case protoTCP:
		return &tcpProber{addr: s.target(), dialer: dialer, timeout: s.timeout}
	default:
		return newHTTPProber(s, dialer)
	}
}

// valueLabel names a value in logs and metrics.
type valueLabel struct{ name, typ, value string }

func (l valueLabel) String() string { return l.name + " " + l.typ + " " + l.value }

// check is one running health check, shared by every value (of every server
// block and every instance alive across a reload) with the same target and
// settings. Its status survives reloads for as long as one instance uses it.
type check struct {
	spec   *checkSpec
	target string
	prober prober

	healthy   atomic.Bool // the verdict; true until the first result says otherwise
	hasResult atomic.Bool
	inflight  atomic.Bool // at most one probe at a time

	ctx    context.Context // cancelled when the last user releases the check
	cancel context.CancelFunc

	// Owned by the registry (under its mu).
	refs   int
	next   time.Time
	probed bool // its first probe has been dispatched
	index  int  // in the scheduler's heap

	mu     sync.Mutex
	streak int                // results in a row that contradict the status
	sets   map[*recordSet]int // sets with values on this check, counted
	labels map[valueLabel]int // values on this check, counted, for logs and metrics

	successes, failures prometheus.Counter
	duration            prometheus.Observer
}

func newCheck(s *checkSpec) *check {
	c := &check{
		spec:   s,
		target: s.target(),
		prober: newProber(s),
		sets:   map[*recordSet]int{},
		labels: map[valueLabel]int{},
	}
	c.healthy.Store(true)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.successes = checksTotal.WithLabelValues(c.target, s.protocol, "success")
	c.failures = checksTotal.WithLabelValues(c.target, s.protocol, "failure")
	c.duration = checkDuration.WithLabelValues(c.target, s.protocol)
	return c
}

func (c *check) isHealthy() bool { return c.healthy.Load() }

// subscribe tells the check that v (of set) depends on it.
func (c *check) subscribe(set *recordSet, l valueLabel) {
	c.mu.Lock()
	c.sets[set]++
	c.labels[l]++
	c.mu.Unlock()
}

func (c *check) unsubscribe(set *recordSet, l valueLabel) {
	c.mu.Lock()
	if c.sets[set]--; c.sets[set] <= 0 {
		delete(c.sets, set)
	}
	if c.labels[l]--; c.labels[l] <= 0 {
		delete(c.labels, l)
	}
	c.mu.Unlock()
}

// run does one probe and records its result. The scheduler has set inflight.
func (c *check) run() {
	defer c.inflight.Store(false)
	ctx, cancel := context.WithTimeout(c.ctx, c.spec.timeout)
	start := time.Now()
	ok, reason := c.prober.probe(ctx)
	elapsed := time.Since(start)
	cancel()
	if c.ctx.Err() != nil {
		return // the check was removed while probing: the result belongs to no one
	}
	c.duration.Observe(elapsed.Seconds())
	if ok {
		c.successes.Inc()
	} else {
		c.failures.Inc()
	}
	if c.spec.invert {
		ok, reason = !ok, "inverted: "+reason
	}
	c.record(ok, reason)
}

// record feeds one result to the status machine: the first result sets the
// status; after that it takes failure_threshold failures in a row to turn
// unhealthy and success_threshold successes in a row to turn healthy again.
func (c *check) record(ok bool, reason string) {
	c.mu.Lock()
	cur := c.healthy.Load()
	changed := false
	switch {
	case !c.hasResult.Load():
		changed = ok != cur
		c.streak = 0
	case ok == cur:
		c.streak = 0
	default:
		c.streak++
		need := c.spec.failureThreshold
		if !cur {
			need = c.spec.successThreshold
		}
		if c.streak >= need {
			changed, c.streak = true, 0
		}
	}
	if changed {
		c.healthy.Store(ok)
	}
	c.hasResult.Store(true)
	var sets []*recordSet
	var labels []valueLabel
	if changed {
		for s := range c.sets {
			sets = append(sets, s)
		}
		for l := range c.labels {
			labels = append(labels, l)
		}
	}
	c.mu.Unlock()
	if !changed {
		return
	}
	to := statusName(ok)
	for _, l := range labels {
		log.Infof("%s is now %s: %s (%s check of %s)", l, to, reason, c.spec.protocol, c.target)
		countTransition(l, to)
	}
	for _, s := range sets {
		s.refresh()
	}
}

func statusName(healthy bool) string {
	if healthy {
		return "healthy"
	}
	return "unhealthy"
}

// describeErr turns a dial, TLS or HTTP error into the few words an operator
// needs: "connection refused", "timeout after 4s", "no such host", the TLS
// complaint.
func describeErr(err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		// net/http's own limits (the TLS handshake's) equal the timeout.
		errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("timeout after %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		// EPIPE: the reset came before the request was written.
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "no such host " + dnsErr.Name
		}
		return "resolving " + dnsErr.Name + ": " + dnsErr.Err
	case errors.Is(err, io.EOF):
		// The target closed the connection before a response (or a TLS
		// handshake) came; Go says just "EOF".
		return "connection closed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed mid-response"
	}
	// Peel the wrappers that only repeat the URL or the addresses (url.Error,
	// net.OpError, even inside net/http's own), and net/http's prefixes that
	// say nothing an operator needs.
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var opErr *net.OpError
	for errors.As(err, &opErr) {
		err = opErr.Err
	}
	msg := strings.TrimPrefix(err.Error(), "net/http: HTTP/1.x transport connection broken: ")
	return strings.TrimPrefix(msg, "net/http: ")
}
