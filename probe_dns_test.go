package multivalue

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func withQuery(name string, qtype uint16) func(*checkTemplate) {
	return func(t *checkTemplate) {
		t.protocol, t.query, t.queryType = protoDNS, name, qtype
	}
}

// hcDNSRaw listens on one port of 127.0.0.1 over UDP, handing each datagram
// to udp, and, when tcp is not nil, over TCP, handing each connection to
// tcp. At cleanup it closes both and waits for the handlers.
func hcDNSRaw(t *testing.T, udp func(pc net.PacketConn, from net.Addr, q []byte), tcp func(net.Conn)) string {
	t.Helper()
	var pc net.PacketConn
	for attempt := 0; ; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if tcp == nil {
			break
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			hcServe(t, ln, tcp)
			break
		}
		pc.Close()
		if attempt == 10 {
			t.Fatalf("no port free over both UDP and TCP: %v", err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			udp(pc, from, append([]byte(nil), buf[:n]...))
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return pc.LocalAddr().String()
}

// hcDNSReply is the reply to the query q, as edit makes it.
func hcDNSReply(q []byte, edit func(r *dns.Msg)) []byte {
	m := new(dns.Msg)
	if err := m.Unpack(q); err != nil {
		return nil
	}
	r := new(dns.Msg)
	r.SetReply(m)
	edit(r)
	b, _ := r.Pack()
	return b
}

// UDP and TCP behaviours of hostile DNS servers.

func hcUDPSilent(net.PacketConn, net.Addr, []byte) {}

func hcUDPWrite(b []byte) func(net.PacketConn, net.Addr, []byte) {
	return func(pc net.PacketConn, from net.Addr, _ []byte) { pc.WriteTo(b, from) }
}

func hcUDPReply(edit func(r *dns.Msg)) func(net.PacketConn, net.Addr, []byte) {
	return func(pc net.PacketConn, from net.Addr, q []byte) { pc.WriteTo(hcDNSReply(q, edit), from) }
}

var hcUDPTruncated = hcUDPReply(func(r *dns.Msg) { r.Truncated = true })

// hcTCPQuery reads one length-prefixed query.
func hcTCPQuery(c net.Conn) []byte {
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil
	}
	q := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, q); err != nil {
		return nil
	}
	return q
}

func hcTCPWrite(b []byte) func(net.Conn) {
	return func(c net.Conn) {
		if hcTCPQuery(c) != nil {
			c.Write(b)
			io.Copy(io.Discard, c)
		}
	}
}

func hcTCPReply(edit func(r *dns.Msg)) func(net.Conn) {
	return func(c net.Conn) {
		if q := hcTCPQuery(c); q != nil {
			r := hcDNSReply(q, edit)
			c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(r))), r...))
			io.Copy(io.Discard, c)
		}
	}
}

// hostileDNSCases are hostile targets of dns checks, for TestHostileTargets.
func hostileDNSCases(t *testing.T) []hostileCase {
	opts := []func(*checkTemplate){withQuery("www.example.org.", dns.TypeA)}
	udp := func(h func(net.PacketConn, net.Addr, []byte)) func(*testing.T) string {
		return func(t *testing.T) string { return hcDNSRaw(t, h, nil) }
	}
	truncThen := func(h func(net.Conn)) func(*testing.T) string {
		return func(t *testing.T) string { return hcDNSRaw(t, hcUDPTruncated, h) }
	}
	otherID := func(r *dns.Msg) { r.Id++ }
	return []hostileCase{
		{name: "dns: never answers", target: udp(hcUDPSilent), opts: opts, reason: "timeout after 300ms"},
		{name: "dns: garbage over UDP", target: udp(hcUDPWrite([]byte("SSH-2.0-OpenSSH_9.6\r\n"))), opts: opts, reason: "malformed response: "},
		{name: "dns: answers with another ID", target: udp(hcUDPReply(otherID)), opts: opts, reason: "timeout after 300ms"},
		{name: "dns: answers another question", target: udp(hcUDPReply(func(r *dns.Msg) { r.Question[0].Name = "other.example.org." })), opts: opts, reason: "timeout after 300ms"},
		{name: "dns: echoes the query", target: udp(func(pc net.PacketConn, from net.Addr, q []byte) { pc.WriteTo(q, from) }), opts: opts, reason: "timeout after 300ms"},
		{name: "dns: a flood of answers with other IDs", target: udp(func(pc net.PacketConn, from net.Addr, q []byte) {
			r := hcDNSReply(q, otherID)
			for range 2000 {
				if _, err := pc.WriteTo(r, from); err != nil {
					return
				}
			}
		}), opts: opts, reason: "timeout after 300ms"},
		{name: "dns: truncated, then TCP never answers", target: truncThen(hcDiscard), opts: opts, reason: "timeout after 300ms"},
		{name: "dns: truncated, then TCP resets", target: truncThen(hcReset), opts: opts, reason: "connection reset"},
		{name: "dns: truncated, then TCP closes after the query", target: truncThen(func(c net.Conn) { hcTCPQuery(c) }), opts: opts, reason: "connection closed"},
		{name: "dns: truncated, then garbage over TCP", target: truncThen(hcTCPWrite([]byte("\x00\x05hello"))), opts: opts, reason: "malformed response: "},
		{name: "dns: truncated, then a TCP length and a trickle", target: truncThen(func(c net.Conn) {
			if hcTCPQuery(c) == nil {
				return
			}
			c.Write([]byte{0xff, 0xff})
			for {
				if _, err := c.Write([]byte{0}); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}), opts: opts, reason: "timeout after 300ms"},
		{name: "dns: truncated, then TCP answers with another ID", target: truncThen(hcTCPReply(otherID)), opts: opts, reason: "response does not answer the query"},
		{name: "dns: truncated, then TCP truncated again", target: truncThen(hcTCPReply(func(r *dns.Msg) { r.Truncated = true })), opts: opts, ok: true, reason: "rcode NOERROR"},
	}
}

// dnsTarget is a DNS server on 127.0.0.1 over UDP and TCP (one port) with
// handler; it counts the queries that came over TCP and keeps the last one.
type dnsTarget struct {
	addr string
	tcp  atomic.Int64
	mu   sync.Mutex
	last *dns.Msg
}

func newDNSTarget(t *testing.T, handler func(w dns.ResponseWriter, r *dns.Msg)) *dnsTarget {
	t.Helper()
	d := &dnsTarget{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if w.RemoteAddr().Network() == "tcp" {
			d.tcp.Add(1)
		}
		d.mu.Lock()
		d.last = r.Copy()
		d.mu.Unlock()
		handler(w, r)
	})
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if attempt == 10 {
			t.Fatal(err)
		}
	}
	d.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return d
}

// TestDNSProbe: the rcode and match decide; what the target is asked; TCP
// when the UDP answer is truncated; reasons for what goes wrong.
func TestDNSProbe(t *testing.T) {
	a := func(name, ip string) dns.RR {
		rr, _ := dns.NewRR(name + " 60 IN A " + ip)
		return rr
	}
	zone := func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch q.Name {
		case "www.example.org.":
			m.Answer = append(m.Answer, a(q.Name, "127.0.0.1"), a(q.Name, "127.0.0.2"))
		case "fail.example.org.":
			m.Rcode = dns.RcodeServerFailure
		case "refused.example.org.":
			m.Rcode = dns.RcodeRefused
		case "nodata.example.org.":
		case "big.example.org.":
			if w.RemoteAddr().Network() == "udp" {
				m.Truncated = true
				break
			}
			for i := range 100 {
				m.Answer = append(m.Answer, a(q.Name, "127.0.1."+strconv.Itoa(i+1)))
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	}
	d := newDNSTarget(t, zone)
	formerr := newDNSTarget(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcodeFormatError(r)
		m.Question = nil // as servers that cannot parse the question answer
		w.WriteMsg(m)
	})
	tests := []struct {
		name   string
		target *dnsTarget // nil: nothing listens
		qname  string
		qtype  uint16
		match  string
		ok     bool
		reason string
		tcp    bool // the answer came over TCP
	}{
		{name: "NOERROR", target: d, qname: "www.example.org.", ok: true, reason: "rcode NOERROR"},
		{name: "NOERROR without an answer", target: d, qname: "nodata.example.org.", ok: true, reason: "rcode NOERROR"},
		{name: "match in an answer's text", target: d, qname: "www.example.org.", match: "A\t127.0.0.2", ok: true, reason: "rcode NOERROR, answer matches"},
		{name: "match in no answer", target: d, qname: "www.example.org.", match: "127.0.0.3", reason: "answer does not match"},
		{name: "match, no answer", target: d, qname: "nodata.example.org.", match: "127.0.0.1", reason: "answer does not match"},
		{name: "SERVFAIL", target: d, qname: "fail.example.org.", reason: "rcode SERVFAIL"},
		{name: "REFUSED", target: d, qname: "refused.example.org.", reason: "rcode REFUSED"},
		{name: "NXDOMAIN", target: d, qname: "none.example.org.", reason: "rcode NXDOMAIN"},
		{name: "FORMERR without a question", target: formerr, qname: "www.example.org.", reason: "rcode FORMERR"},
		{name: "truncated over UDP: asked again over TCP", target: d, qname: "big.example.org.", match: "127.0.1.100", ok: true, reason: "rcode NOERROR, answer matches", tcp: true},
		{name: "nothing listens", qname: "www.example.org.", reason: "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := deadUDPAddr(t)
			if tc.target != nil {
				addr = tc.target.addr
			}
			host, port := hostPort(t, addr)
			qtype := tc.qtype
			if qtype == 0 {
				qtype = dns.TypeA
			}
			opts := []func(*checkTemplate){withQuery(tc.qname, qtype)}
			if tc.match != "" {
				opts = append(opts, withMatch(tc.match))
			}
			var tcpBefore int64
			if tc.target != nil {
				tcpBefore = tc.target.tcp.Load()
			}
			ok, reason, _ := hcProbe(hcSpec(host, port, opts...))
			if ok != tc.ok || reason != tc.reason {
				t.Errorf("probe = %v %q, want %v %q", ok, reason, tc.ok, tc.reason)
			}
			if tc.target == nil {
				return
			}
			if tcp := tc.target.tcp.Load() > tcpBefore; tcp != tc.tcp {
				t.Errorf("asked over TCP: %v, want %v", tcp, tc.tcp)
			}
		})
	}

	// What the target is asked: the question, RD, EDNS0 with 1232 bytes.
	host, port := hostPort(t, d.addr)
	if ok, reason, _ := hcProbe(hcSpec(host, port, withQuery("www.example.org.", dns.TypeAAAA))); !ok {
		t.Fatalf("probe failed: %s", reason)
	}
	d.mu.Lock()
	q := d.last
	d.mu.Unlock()
	if len(q.Question) != 1 || q.Question[0].Name != "www.example.org." || q.Question[0].Qtype != dns.TypeAAAA || q.Question[0].Qclass != dns.ClassINET {
		t.Errorf("question %v, want www.example.org. IN AAAA", q.Question)
	}
	if !q.RecursionDesired {
		t.Error("RD not set: a resolver target would not recurse")
	}
	if opt := q.IsEdns0(); opt == nil || opt.UDPSize() != dnsUDPSize || opt.Do() {
		t.Errorf("EDNS0 %v, want a %d-byte buffer without DO", opt, dnsUDPSize)
	}
}

// TestDNSProbeHostName: a host-name target is resolved at probe time,
// through the probes' resolver.
func TestDNSProbeHostName(t *testing.T) {
	d := newDNSTarget(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		w.WriteMsg(m)
	})
	resolver := hcStartDNS(t, map[string]string{"ns.example.org.": "127.0.0.1"}, false)
	hcUseResolver(t, resolver)
	_, port := hostPort(t, d.addr)
	for _, tc := range []struct {
		host, reason string
	}{
		{"ns.example.org", "rcode NOERROR"},
		{"gone.example.org", "no such host gone.example.org"},
	} {
		if _, reason, _ := hcProbe(hcSpec(tc.host, port, withQuery("example.org.", dns.TypeSOA))); reason != tc.reason {
			t.Errorf("%s: reason %q, want %q", tc.host, reason, tc.reason)
		}
	}
}

// deadUDPAddr returns a loopback UDP address where nothing listens.
func deadUDPAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}
