package socket_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"ustack/socket"
	"ustack/stack"
)

// These tests run unmodified standard-library protocols over the stack:
// net/http (HTTP/1.1 and HTTP/2), crypto/tls.

// payload returns n bytes of a fixed pseudo-random stream.
func payload(n int) []byte {
	b := make([]byte, n)
	mrand.NewChaCha8([32]byte{'u', 's', 't', 'a', 'c', 'k'}).Read(b)
	return b
}

// testMux serves GET /data?n=N (N bytes of payload) and POST /sum (the
// hex SHA-256 of the request body).
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /data", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(payload(n))
	})
	mux.HandleFunc("POST /sum", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%x", h.Sum(nil))
	})
	return mux
}

// fetchSum GETs n bytes from base and checks their SHA-256; it returns
// the response's protocol major version. It may run on any goroutine.
func fetchSum(t *testing.T, hc *http.Client, base string, n int) int {
	t.Helper()
	resp, err := hc.Get(fmt.Sprintf("%s/data?n=%d", base, n))
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	if err != nil || got != int64(n) || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %d bytes: status %d, got %d bytes, %v", n, resp.StatusCode, got, err)
		return 0
	}
	if want := sha256.Sum256(payload(n)); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Errorf("GET %d bytes: SHA-256 differs", n)
	}
	return resp.ProtoMajor
}

// postSum POSTs n bytes to base and checks the SHA-256 the server
// computed.
func postSum(t *testing.T, hc *http.Client, base string, n int) {
	t.Helper()
	body := payload(n)
	resp, err := hc.Post(base+"/sum", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	want := sha256.Sum256(body)
	if err != nil || string(got) != hex.EncodeToString(want[:]) {
		t.Errorf("POST %d bytes: server's SHA-256 %q, %v; want %x", n, got, err, want)
	}
}

// httpClient is a client whose connections the stack dials.
func httpClient(a *stack.Stack, tr *http.Transport) *http.Client {
	tr.DialContext = (&socket.Dialer{Stack: a}).DialContext
	return &http.Client{Transport: tr}
}

func TestHTTP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		srv := &http.Server{Handler: testMux()}
		served := make(chan error, 1)
		ln := tcpListen(t, b, 80)
		go func() { served <- srv.Serve(ln) }()
		tr := &http.Transport{}
		hc := httpClient(a, tr)
		const base = "http://10.1.0.2"

		if proto := fetchSum(t, hc, base, 10<<20); proto != 1 {
			t.Errorf("HTTP/%d, want HTTP/1.1", proto)
		}
		postSum(t, hc, base, 10<<20)
		// Several requests at once, on several connections.
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() { fetchSum(t, hc, base, 100000+i) })
		}
		wg.Wait()

		tr.CloseIdleConnections()
		srv.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	})
}

// selfSigned makes a certificate for 10.1.0.2 and "b.test", and a client
// configuration that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "b.test"},
		DNSNames:              []string{"b.test"},
		IPAddresses:           []net.IP{tcpB.AsSlice()},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}}
	client = &tls.Config{RootCAs: pool, ServerName: "b.test"}
	return server, client
}

func TestTLS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		scfg, ccfg := selfSigned(t)
		c, s := tcpConnect(t, a, tcpListen(t, b, 443))
		ts, tc := tls.Server(s, scfg), tls.Client(c, ccfg)
		echoed := make(chan error, 1)
		go func() {
			_, err := io.Copy(ts, ts)
			if err == nil {
				err = ts.CloseWrite()
			}
			echoed <- err
		}()
		msg := payload(1 << 20)
		go func() {
			tc.Write(msg)
			tc.CloseWrite() // close_notify: the server's copy ends
		}()
		got, err := io.ReadAll(tc)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo through TLS: %d of %d bytes, %v", len(got), len(msg), err)
		}
		if err := <-echoed; err != nil {
			t.Errorf("server: %v", err)
		}
		st := tc.ConnectionState()
		if !st.HandshakeComplete || st.Version != tls.VersionTLS13 || len(st.PeerCertificates) != 1 {
			t.Errorf("connection state: complete %v, version %x, %d certificates", st.HandshakeComplete, st.Version, len(st.PeerCertificates))
		}
	})
}

func TestHTTP2TLS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		scfg, ccfg := selfSigned(t)
		srv := &http.Server{Handler: testMux(), TLSConfig: scfg}
		served := make(chan error, 1)
		ln := tcpListen(t, b, 443)
		go func() { served <- srv.ServeTLS(ln, "", "") }()
		tr := &http.Transport{TLSClientConfig: ccfg, ForceAttemptHTTP2: true}
		hc := httpClient(a, tr)
		const base = "https://10.1.0.2"

		if proto := fetchSum(t, hc, base, 2<<20); proto != 2 {
			t.Fatalf("HTTP/%d, want HTTP/2 (ALPN h2)", proto)
		}
		postSum(t, hc, base, 2<<20)
		// Streams at once, multiplexed on the one connection.
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() { fetchSum(t, hc, base, 50000+i) })
		}
		wg.Wait()

		tr.CloseIdleConnections()
		srv.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("ServeTLS: %v", err)
		}
	})
}

func TestHTTP2Cleartext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		h2c := new(http.Protocols)
		h2c.SetUnencryptedHTTP2(true)
		srv := &http.Server{Handler: testMux(), Protocols: h2c}
		served := make(chan error, 1)
		ln := tcpListen(t, b, 80)
		go func() { served <- srv.Serve(ln) }()
		tr := &http.Transport{Protocols: h2c}
		hc := httpClient(a, tr)
		if proto := fetchSum(t, hc, "http://10.1.0.2", 1<<20); proto != 2 {
			t.Fatalf("HTTP/%d, want HTTP/2 (prior knowledge)", proto)
		}
		postSum(t, hc, "http://10.1.0.2", 1<<20)
		tr.CloseIdleConnections()
		srv.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	})
}
