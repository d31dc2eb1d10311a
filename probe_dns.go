package multivalue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsUDPSize is the EDNS0 buffer size a dns probe offers (the DNS flag day
// 2020 value): most answers fit, larger ones come truncated and are asked
// again over TCP.
const dnsUDPSize = 1232

// dnsProber passes when the target answers its query with rcode NOERROR and,
// with match, an answer RR whose zone-file text contains the string. The
// query goes over UDP, and again over TCP when the answer is truncated, both
// within the probe's one timeout.
type dnsProber struct {
	addr    string
	dialer  *net.Dialer
	qname   string
	qtype   uint16
	match   string
	timeout time.Duration // for the reason only: ctx enforces it
}

func newDNSProber(s *checkSpec, dialer *net.Dialer) *dnsProber {
	return &dnsProber{addr: s.target(), dialer: dialer, qname: s.query, qtype: s.queryType, match: s.match, timeout: s.timeout}
}

func (p *dnsProber) probe(ctx context.Context) (bool, string) {
	q := new(dns.Msg)
	q.SetQuestion(p.qname, p.qtype) // RD set: the target may be a resolver
	q.SetEdns0(dnsUDPSize, false)
	r, err := p.exchange(ctx, "udp", q)
	if err == nil && r.Truncated {
		r, err = p.exchange(ctx, "tcp", q)
	}
	var bad badResponse
	switch {
	case errors.As(err, &bad):
		return false, string(bad)
	case err != nil:
		return false, describeErr(err, p.timeout)
	}
	if r.Rcode != dns.RcodeSuccess {
		return false, "rcode " + rcodeName(r.Rcode)
	}
	if p.match == "" {
		return true, "rcode NOERROR"
	}
	for _, rr := range r.Answer {
		if strings.Contains(rr.String(), p.match) {
			return true, "rcode NOERROR, answer matches"
		}
	}
	return false, "answer does not match"
}

// badResponse is an answer the probe refuses, and why.
type badResponse string

func (b badResponse) Error() string { return string(b) }

// exchange sends q over network and returns the answer to it. The
// connection lives for the one exchange, within ctx's deadline; over UDP,
// datagrams that do not answer q (another ID or question: late or forged)
// are skipped.
func (p *dnsProber) exchange(ctx context.Context, network string, q *dns.Msg) (*dns.Msg, error) {
	conn, err := p.dialer.DialContext(ctx, network, p.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// A check removed mid-probe cancels ctx before its deadline.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // as the tcp prober: no TIME_WAIT per probe
	}

	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	udp := network == "udp"
	if !udp {
		wire = append(binary.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...)
	}
	if _, err := conn.Write(wire); err != nil {
		return nil, err
	}
	buf := make([]byte, dns.MaxMsgSize)
	for {
		var n int
		if udp {
			n, err = conn.Read(buf)
		} else {
			var l [2]byte
			if _, err = io.ReadFull(conn, l[:]); err == nil {
				n, err = io.ReadFull(conn, buf[:binary.BigEndian.Uint16(l[:])])
			}
		}
		if err != nil {
			return nil, err
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			return nil, badResponse("malformed response: " + strings.TrimPrefix(err.Error(), "dns: "))
		}
		if answers(r, q) {
			return r, nil
		}
		if !udp {
			return nil, badResponse("response does not answer the query")
		}
	}
}

// answers reports whether r is a response to q: same ID and question.
func answers(r, q *dns.Msg) bool {
	if !r.Response || r.Id != q.Id || len(r.Question) != 1 {
		// A response with no question (FORMERR, NOTIMP) still answers.
		return r.Response && r.Id == q.Id && len(r.Question) == 0 && r.Rcode != dns.RcodeSuccess
	}
	a, b := r.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// rcodeName is an rcode's mnemonic (SERVFAIL), or its number.
func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprint(rcode)
}
