// Command backends listens on n loopback addresses (127.NET.0.1, 127.NET.0.2,
// ... as benchkit.IP numbers them) on one TCP port, accepting and closing every
// connection, so that `protocol tcp` health checks against them pass. It runs
// until interrupted. dnsperf.sh uses it for the live-check scenarios.
//
//	go run ./bench/backends -net 2 -n 1000 -port 18081
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/multivalue-dns/coredns-multivalue/bench/internal/benchkit"
)

func main() {
	netNum := flag.Int("net", 2, "second octet of the 127.NET.x.y addresses")
	n := flag.Int("n", 12, "number of addresses")
	port := flag.Int("port", 18081, "TCP port")
	flag.Parse()

	addrs := make([]string, *n)
	for i := range addrs {
		addrs[i] = net.JoinHostPort(benchkit.IP(*netNum, i), strconv.Itoa(*port))
	}
	b, err := benchkit.Listen(addrs)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %d addresses\n", len(addrs))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	b.Close()
}
