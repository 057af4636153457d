// Command servedir serves one directory read-only over HTTP on loopback, so
// that `docker build --network=host` can fetch the s6-overlay release
// tarballs from ../shared/s6-overlay/<version>/ exactly as it would fetch
// them from a GitHub release (scripts/e2e/run.sh starts it).
//
//	servedir DIR
//
// It listens on a free port of 127.0.0.1, prints its base URL on stdout
// once it accepts connections, logs each request on stderr, and stops on
// SIGTERM or SIGINT (the script that started it sends one when it ends).
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("servedir: ")
	if len(os.Args) != 2 {
		log.Fatal("usage: servedir DIR")
	}
	dir := os.Args[1]
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		log.Fatalf("%s is not a directory", dir)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	files := http.FileServer(http.Dir(dir))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s", r.Method, r.URL.Path)
		files.ServeHTTP(w, r)
	})}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		srv.Close()
	}()
	fmt.Printf("http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
