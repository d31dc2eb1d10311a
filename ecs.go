package multivalue

import (
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// clientSubnet returns the query's EDNS Client Subnet option (RFC 7871), nil
// when it has none, and whether it is well formed: an address with bits set
// beyond its source prefix is malformed, and RFC 7871 section 7.1.2 has the
// server answer FORMERR. (miekg/dns has already refused an unknown family or a
// prefix longer than the address when it unpacked the query; it keeps no
// count of the address octets, so too many or too few cannot be told here.)
func clientSubnet(opt *dns.OPT) (*dns.EDNS0_SUBNET, bool) {
	if opt == nil {
		return nil, true
	}
	for _, o := range opt.Option {
		e, ok := o.(*dns.EDNS0_SUBNET)
		if !ok {
			continue
		}
		if e.Family == 0 {
			return e, true // dig's +subnet=0: no address at all
		}
		addr, ok := subnetAddr(e)
		if !ok {
			return e, false
		}
		p := netip.PrefixFrom(addr, int(e.SourceNetmask))
		return e, p.IsValid() && p.Masked().Addr() == addr
	}
	return nil, true
}

// subnetAddr is the option's address in its family.
func subnetAddr(e *dns.EDNS0_SUBNET) (netip.Addr, bool) {
	ip := e.Address
	if e.Family == 1 {
		ip = ip.To4()
	} else {
		ip = ip.To16()
	}
	addr, ok := netip.AddrFromSlice(ip)
	return addr, ok && ip != nil
}

// stickyClient is the client a sticky set picks for: the ECS subnet when the
// query has one (cut to the sticky prefix when that is shorter), else the
// source address cut to the sticky prefix.
func stickyClient(w dns.ResponseWriter, ecs *dns.EDNS0_SUBNET, opts *selection) netip.Prefix {
	var addr netip.Addr
	bits := -1
	if ecs != nil {
		if ecs.Family == 0 {
			return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		addr, _ = subnetAddr(ecs)
		bits = int(ecs.SourceNetmask)
	} else {
		var ip net.IP
		switch a := w.RemoteAddr().(type) {
		case *net.UDPAddr:
			ip = a.IP
		case *net.TCPAddr:
			ip = a.IP
		}
		addr, _ = netip.AddrFromSlice(ip)
		addr = addr.Unmap()
	}
	limit := opts.v6Prefix
	if addr.Is4() {
		limit = opts.v4Prefix
	}
	if bits < 0 || bits > limit {
		bits = limit
	}
	p, _ := addr.Prefix(bits)
	return p
}

// echoSubnet adds to a reply the client's ECS option with SCOPE PREFIX-LENGTH
// scope (RFC 7871 section 7.2.1: family, source prefix and address copied),
// so that a resolver caches the answer for that subnet: the sticky prefix
// used, or 0 when the answer does not depend on the client.
func echoSubnet(reply *dns.Msg, reqOpt *dns.OPT, ecs *dns.EDNS0_SUBNET, scope int) {
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(reqOpt.UDPSize())
	if reqOpt.Do() {
		o.SetDo()
	}
	o.Option = []dns.EDNS0{&dns.EDNS0_SUBNET{
		Code:          dns.EDNS0SUBNET,
		Family:        ecs.Family,
		SourceNetmask: ecs.SourceNetmask,
		SourceScope:   uint8(scope),
		Address:       ecs.Address,
	}}
	reply.Extra = append(reply.Extra, o)
}
