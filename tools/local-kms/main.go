// Command local-kms runs github.com/nsmithuk/local-kms, an AWS KMS-compatible
// server, for the SOPS AWS KMS test (test/integration/sops-kms.test.ts).
//
// Upstream's main listens on every interface (":"+PORT). This wrapper serves
// the same request handler on a loopback address only (KMS_LISTEN, default
// 127.0.0.1:0, i.e. a free port) and prints the address it bound as
// "listening on HOST:PORT" on stdout, so a test can start it without a port
// race. KMS_DATA_PATH (required: the test's temporary directory),
// KMS_ACCOUNT_ID and KMS_REGION mean what they mean upstream. Keys are
// created through the KMS API (CreateKey); the seed file is not read.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/nsmithuk/local-kms/src"
	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
)

// Set with -ldflags by hack/tools.sh.
var (
	version    = "dev"
	sourceHash = "dev"
)

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Printf("local-kms %s (wrapper %s)\n", version, sourceHash)
		return
	}
	dataPath := os.Getenv("KMS_DATA_PATH")
	if dataPath == "" {
		fmt.Fprintln(os.Stderr, "local-kms: KMS_DATA_PATH must name a directory for the key database")
		os.Exit(2)
	}
	config.AWSAccountId = env("KMS_ACCOUNT_ID", "111122223333")
	config.AWSRegion = env("KMS_REGION", "eu-west-2")
	config.DatabasePath, _ = filepath.Abs(dataPath)

	listen := env("KMS_LISTEN", "127.0.0.1:0")
	host, _, err := net.SplitHostPort(listen)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(os.Stderr, "local-kms: KMS_LISTEN %q must be a loopback address with a port\n", listen)
		os.Exit(2)
	}

	database := data.NewDatabase(config.DatabasePath)
	defer database.Close()

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "local-kms: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr().String())
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src.HandleRequest(w, r, database)
	})
	if err := http.Serve(ln, handler); err != nil {
		fmt.Fprintf(os.Stderr, "local-kms: %v\n", err)
		os.Exit(1)
	}
}
