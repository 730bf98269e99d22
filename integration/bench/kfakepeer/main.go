// Command kfakepeer is the Kafka peer of the benchmark suite's
// forwarding part (integration/bench/benchrun, part 7): a kfake cluster
// (franz-go's Kafka protocol server, github.com/twmb/franz-go/pkg/kfake)
// in a process of its own, so that the suite measures its CPU apart from
// Caddy's and from the suite's own clients, as it does rsyslog's and the
// Collector's. It listens on 127.0.0.1, a broker per port, over TLS when
// given a certificate, with one topic seeded, and runs until SIGTERM or
// SIGINT. run.sh builds it beside benchrun:
//
//	kfakepeer -ports 9092,9093,9094 -topic logs -partitions 6 -cert server.pem -key server.key
//	kfakepeer -version
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

const kfakeModule = "github.com/twmb/franz-go/pkg/kfake"

func main() {
	ports := flag.String("ports", "", "the brokers' ports on 127.0.0.1, comma-separated: one broker per port (required)")
	topic := flag.String("topic", "logs", "the topic to create")
	partitions := flag.Int("partitions", 6, "the topic's partitions")
	cert := flag.String("cert", "", "the brokers' certificate (PEM); with -key, the brokers speak TLS")
	key := flag.String("key", "", "the certificate's key (PEM)")
	version := flag.Bool("version", false, "print kfake's module version and exit")
	flag.Parse()
	if *version {
		fmt.Println("kfake", kfakeVersion())
		return
	}
	if err := run(*ports, *topic, *partitions, *cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, "kfakepeer:", err)
		os.Exit(1)
	}
}

func run(portList, topic string, partitions int, cert, key string) error {
	var ports []int
	for p := range strings.SplitSeq(portList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("-ports: bad port %q", p)
		}
		ports = append(ports, n)
	}
	if partitions < 1 {
		return fmt.Errorf("-partitions %d: want at least 1", partitions)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(len(ports)),
		kfake.Ports(ports...),
		kfake.SeedTopics(int32(partitions), topic),
	}
	if cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return fmt.Errorf("the brokers' certificate: %w", err)
		}
		opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("starting the cluster: %w", err)
	}
	defer c.Close()
	<-ctx.Done()
	return nil
}

// kfakeVersion is the kfake module this program was built with.
func kfakeVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, m := range info.Deps {
			if m.Path == kfakeModule {
				return m.Version
			}
		}
	}
	return "(unknown)"
}
