package multivalue

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	golog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The admin API: one HTTP listener per address per process, as plugin/health
// and plugin/ready have, serving every multivalue set of every server block.
//
// Unlike theirs, the listener is counted rather than closed on every reload
// and opened again: a reload starts the new instances (which take the
// address, already open) before it stops the old ones (which let go of it),
// so a reload that keeps the address keeps the listener, and no request is
// refused while it runs. The last instance to let go closes it. (uniq, which
// health and ready use to open an address once, neither counts users nor
// reports an error of the function it runs.)

const (
	maxAdminBody  = 64 << 10 // request bodies; 413 beyond
	maxAdminConns = 512      // connections at once; more are closed at once
	adminShutdown = 2 * time.Second
)

// admins are the process's admin listeners, by address as written.
var admins = struct {
	sync.Mutex
	byAddr map[string]*adminServer
}{byAddr: map[string]*adminServer{}}

// adminServer is one admin listener and the instances that use it.
type adminServer struct {
	addr string
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve has returned

	mu   sync.Mutex
	regs []adminReg // the instances using the address, in the order they started
}

// adminReg is an instance's use of an admin address: the token it wants
// (that of the instance that started last decides) and its engine.
type adminReg struct {
	owner  *Multivalue
	token  *[sha256.Size]byte // SHA-256 of the token; nil: none
	engine *engine
}

// acquireAdmin returns the admin listener for cfg's address, opening it if
// no instance has it open, and counts m among its users.
func acquireAdmin(cfg *adminConfig, m *Multivalue) (*adminServer, error) {
	admins.Lock()
	defer admins.Unlock()
	a := admins.byAddr[cfg.addr]
	if a == nil {
		ln, err := net.Listen("tcp", cfg.addr)
		if err != nil {
			return nil, err
		}
		a = newAdminServer(cfg.addr, ln)
		admins.byAddr[cfg.addr] = a
		log.Infof("admin API on http://%s", ln.Addr())
	}
	reg := adminReg{owner: m, engine: m.engine}
	if cfg.tokenFile != "" {
		sum := sha256.Sum256(cfg.token)
		reg.token = &sum
	}
	a.mu.Lock()
	a.regs = append(a.regs, reg)
	a.mu.Unlock()
	return a, nil
}

func newAdminServer(addr string, ln net.Listener) *adminServer {
	a := &adminServer{addr: addr, ln: &limitListener{Listener: ln, slots: make(chan struct{}, maxAdminConns)}, done: make(chan struct{})}
	a.srv = &http.Server{
		Handler: a,
		// A client gets this long to send its headers (slowloris), the
		// whole request, and to read the reply; an idle keep-alive
		// connection is closed after IdleTimeout.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          golog.New(debugWriter{}, "", 0),
	}
	go func() {
		defer close(a.done)
		a.srv.Serve(a.ln)
	}()
	return a
}

// release counts m out; the last user closes the listener, letting requests
// under way finish for a moment.
func (a *adminServer) release(m *Multivalue) {
	admins.Lock()
	a.mu.Lock()
	for i, r := range a.regs {
		if r.owner == m {
			a.regs = append(a.regs[:i], a.regs[i+1:]...)
			break
		}
	}
	left := len(a.regs)
	a.mu.Unlock()
	if left > 0 {
		admins.Unlock()
		return
	}
	delete(admins.byAddr, a.addr)
	// Closed under the lock, so that an instance starting now can listen on
	// the address again.
	a.ln.Close()
	admins.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), adminShutdown)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.srv.Close()
	}
	<-a.done
	log.Infof("admin API on %s closed", a.addr)
}

// current is the registration that decides the token and the engine: that
// of the instance that started last. ok is false when none is left.
func (a *adminServer) current() (adminReg, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.regs) == 0 {
		return adminReg{}, false
	}
	return a.regs[len(a.regs)-1], true
}

// ServeHTTP authenticates, limits the body and routes.
func (a *adminServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reg, ok := a.current()
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	if reg.token != nil && !authorized(r, reg.token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="multivalue"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	// On a copy of the request: the server looks at the original's body
	// after the handler, to close the connection rather than read a large
	// body that was refused unread (a 413 on its Content-Length).
	r = r.WithContext(r.Context())
	r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
	api := adminAPI{ops: reg.engine.ops}
	api.ServeHTTP(w, r)
}

// authorized reports whether the request carries `Authorization: Bearer
// TOKEN`. The tokens are compared as SHA-256 sums, in constant time: neither
// their content nor their length shows in the time it takes.
func authorized(r *http.Request, want *[sha256.Size]byte) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// limitListener accepts at most cap(slots) connections at once and closes
// the ones beyond at once, instead of making them wait: a flood of
// connections costs the API, not CoreDNS's file descriptors.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			c.Close()
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// debugWriter sends net/http's own messages (a client that timed out, a
// malformed request) to the debug log: a client must not be able to fill
// CoreDNS's log.
type debugWriter struct{}

func (debugWriter) Write(p []byte) (int, error) {
	log.Debug(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
