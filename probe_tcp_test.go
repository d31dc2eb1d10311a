package multivalue

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTCPProbe: a tcp check passes when a connection opens, whatever the
// target then says or does not say, and fails with the reason operators read.
func TestTCPProbe(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer web.Close()
	silent := hcRawServer(t, hcDiscard)
	dns := hcStartDNS(t, map[string]string{"up.example.org.": "127.0.0.1"}, false)
	hcUseResolver(t, dns)
	_, silentPort := hostPort(t, silent)
	tests := []struct {
		name   string
		host   string
		port   int
		ok     bool
		reason string
	}{
		{"open (a 503 web server is up for tcp)", "", 0, true, "connected"},
		{"open, never speaks", "127.0.0.1", silentPort, true, "connected"},
		{"closed port", "dead", 0, false, "connection refused"},
		{"host name resolved at probe time", "up.example.org", silentPort, true, "connected"},
		{"host name that does not exist", "down.example.org", silentPort, false, "no such host down.example.org"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host, port := tc.host, tc.port
			switch host {
			case "":
				host, port = hostPort(t, web.URL)
			case "dead":
				host, port = hostPort(t, deadAddr(t))
			}
			ok, reason, _ := hcProbe(hcSpec(host, port, withProtocol(protoTCP)))
			if ok != tc.ok || reason != tc.reason {
				t.Errorf("probe = %v %q, want %v %q", ok, reason, tc.ok, tc.reason)
			}
		})
	}
}

// TestTCPProbeConnectTimeout: a connect that never completes (the target's
// accept queue is full, so the kernel drops the SYN) fails at the timeout.
func TestTCPProbeConnectTimeout(t *testing.T) {
	addr, ok := hcFullBacklog(t)
	if !ok {
		t.Skip("could not fill a listen backlog on this kernel")
	}
	host, port := hostPort(t, addr)
	ok, reason, took := hcProbe(hcSpec(host, port, withProtocol(protoTCP), withTimeout(hcTimeout)))
	t.Logf("tcp connect to a full backlog: %v %q after %v", ok, reason, took)
	if ok || reason != "timeout after 300ms" {
		t.Errorf("probe = %v %q, want false %q", ok, reason, "timeout after 300ms")
	}
	if took > hcTimeout+time.Second {
		t.Errorf("probe took %v, timeout is %v", took, hcTimeout)
	}
}

// hcFullBacklog returns the address of a listener with a backlog of 0 whose
// queue is full, so that new connects hang. ok is false if the kernel still
// accepts connects (then the test cannot tell anything).
func hcFullBacklog(t *testing.T) (string, bool) {
	ln := hcListenBacklog0(t)
	addr := ln.Addr().String()
	// Fill the queue: connects complete until it is full.
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			if strings.Contains(err.Error(), "timeout") {
				return addr, true
			}
			t.Fatalf("filling the backlog: %v", err)
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr, false
}

// hcListenBacklog0 listens on 127.0.0.1 with a backlog of 0 and never accepts.
func hcListenBacklog0(t *testing.T) net.Listener {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "backlog0")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
