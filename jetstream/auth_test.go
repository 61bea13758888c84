package jetstream_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/jetstream"
)

// otherLocalAddr is an address of this machine that is not loopback
// (invalid when it has none).
func otherLocalAddr(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if ok && !ip.Unmap().IsLoopback() && !ip.IsLinkLocalUnicast() && ip.Unmap().Is4() {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

func portOf(t *testing.T, emb *jetstream.Embedded) int {
	t.Helper()
	a, ok := emb.Server().Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("no client port: %v", emb.Server().Addr())
	}
	return a.Port
}

// The embedded server listens on loopback unless told otherwise: its
// port cannot be reached on another address of this machine.
func TestEmbeddedListensOnLoopbackByDefault(t *testing.T) {
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{StoreDir: t.TempDir()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	bound := emb.Server().Addr().(*net.TCPAddr)
	if !bound.IP.IsLoopback() {
		t.Fatalf("listens on %s, want a loopback address", bound)
	}
	if emb.AuthMode() != "none" {
		t.Errorf("auth %q, want none", emb.AuthMode())
	}
	port := strconv.Itoa(bound.Port)
	nc, err := nats.Connect("nats://127.0.0.1:" + port)
	if err != nil {
		t.Fatalf("loopback: %v", err)
	}
	nc.Close()
	other := otherLocalAddr(t)
	if !other.IsValid() {
		t.Log("this machine has no address besides loopback; checked the bound address only")
		return
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(other.String(), port), 5*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("the embedded NATS port %s is reachable on %s", port, other)
	}
}

// Listening beyond loopback without credentials is refused.
func TestEmbeddedExposedWithoutCredentialsRefused(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "::", "192.0.2.1"} {
		emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Host: host, StoreDir: t.TempDir()}, discard())
		if err == nil {
			emb.Shutdown()
			t.Fatalf("host %s: started with no credentials", host)
		}
		if !errors.Is(err, jetstream.ErrExposedWithoutAuth) {
			t.Errorf("host %s: error %v, want ErrExposedWithoutAuth", host, err)
		}
	}
	// A config file that exposes it is held to the same rule.
	conf := writeConf(t, "listen: 0.0.0.0:-1\n")
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{ConfigFile: conf, StoreDir: t.TempDir()}, discard())
	if err == nil {
		emb.Shutdown()
		t.Fatal("config file listening on 0.0.0.0 with no authorization started")
	}
	if !errors.Is(err, jetstream.ErrExposedWithoutAuth) {
		t.Errorf("config file: error %v, want ErrExposedWithoutAuth", err)
	}
}

// Exposed with credentials: a client without them is refused, with them
// it works, over TCP on a non-loopback address and in-process alike.
func TestEmbeddedExposedRequiresCredentials(t *testing.T) {
	cases := []struct {
		name string
		cfg  config.NATS
		auth string
	}{
		{"user", config.NATS{User: "sy", Password: "s3cret", MaxReconnects: -1}, "user"},
		{"token", config.NATS{Token: "t0ken", MaxReconnects: -1}, "token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{
				Host: "0.0.0.0", StoreDir: t.TempDir(), User: tc.cfg.User, Password: tc.cfg.Password, Token: tc.cfg.Token,
			}, discard())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(emb.Shutdown)
			if emb.AuthMode() != tc.auth {
				t.Errorf("auth %q, want %q", emb.AuthMode(), tc.auth)
			}
			host := "127.0.0.1"
			if a := otherLocalAddr(t); a.IsValid() {
				host = a.String()
			}
			url := "nats://" + net.JoinHostPort(host, strconv.Itoa(portOf(t, emb)))
			opts, err := jetstream.ClientOptions(&tc.cfg)
			if err != nil {
				t.Fatal(err)
			}

			_, err = jetstream.Connect("anon", url, nil, discard(), nats.MaxReconnects(0))
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("TCP without credentials: err %v, want %v", err, nats.ErrAuthorization)
			}
			// In-process, the server closes the pipe (at once for a user;
			// after its auth timeout for a token, so that case is not run).
			if tc.auth == "user" {
				if nc, err := jetstream.Connect("anon-inproc", "", emb, discard(), nats.MaxReconnects(0)); err == nil {
					nc.Close()
					t.Error("in-process without credentials: connected")
				}
			}
			wrong := tc.cfg
			wrong.Password, wrong.Token = "wrong", map[bool]string{true: "wrong"}[wrong.Token != ""]
			wopts, _ := jetstream.ClientOptions(&wrong)
			if _, err = jetstream.Connect("wrong", url, nil, discard(), append(wopts, nats.MaxReconnects(0))...); !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("TCP with a wrong secret: err %v, want %v", err, nats.ErrAuthorization)
			}

			for name, e := range map[string]*jetstream.Embedded{"tcp": nil, "in-process": emb} {
				nc, err := jetstream.Connect("ok", url, e, discard(), opts...)
				if err != nil {
					t.Fatalf("%s with credentials: %v", name, err)
				}
				if err := nc.Publish("x", nil); err != nil || nc.Flush() != nil {
					t.Errorf("%s: publish: %v", name, err)
				}
				nc.Close()
			}
		})
	}
}

// A config file's own authorization wins, and counts as credentials.
func TestEmbeddedConfigFileAuthorization(t *testing.T) {
	conf := writeConf(t, "listen: 0.0.0.0:-1\nauthorization { user: fileuser, password: filepass }\n")
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{
		ConfigFile: conf, StoreDir: t.TempDir(), User: "ignored", Password: "ignored",
	}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	if emb.AuthMode() != "config_file" {
		t.Errorf("auth %q, want config_file", emb.AuthMode())
	}
	url := "nats://127.0.0.1:" + strconv.Itoa(portOf(t, emb))
	if _, err := jetstream.Connect("ignored", url, nil, discard(), nats.UserInfo("ignored", "ignored"), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("options' user: err %v, want %v", err, nats.ErrAuthorization)
	}
	nc, err := jetstream.Connect("file", url, nil, discard(), nats.UserInfo("fileuser", "filepass"))
	if err != nil {
		t.Fatalf("file's user: %v", err)
	}
	nc.Close()
}

// runServer starts a plain nats-server (no JetStream) with opts on a
// random loopback port.
func runServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every credential form nats.go supports, against a real server that
// requires it: with the credentials the connection works, without them
// it is refused.
func TestClientOptionsExternal(t *testing.T) {
	dir := t.TempDir()

	// nkey
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	useed, _ := ukp.Seed()
	seedFile := writeFile(t, dir, "user.nk", useed)

	// creds: an operator, an account it signs, a user the account signs.
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	akp, _ := nkeys.CreateAccount()
	apub, _ := akp.PublicKey()
	ajwt, err := jwt.NewAccountClaims(apub).Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	ckp, _ := nkeys.CreateUser()
	cpub, _ := ckp.PublicKey()
	cseed, _ := ckp.Seed()
	cjwt, err := jwt.NewUserClaims(cpub).Encode(akp)
	if err != nil {
		t.Fatal(err)
	}
	credsData, err := jwt.FormatUserConfig(cjwt, cseed)
	if err != nil {
		t.Fatal(err)
	}
	credsFile := writeFile(t, dir, "user.creds", credsData)
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(apub, ajwt); err != nil {
		t.Fatal(err)
	}

	// TLS: a CA, a server certificate for 127.0.0.1, a client certificate.
	pki := newPKI(t, dir)

	cases := []struct {
		name   string
		opts   *server.Options
		scheme string
		cfg    config.NATS
		url    func(string) string // rewrites the URL (user:pass@ in it)
	}{
		{"token", &server.Options{Authorization: "t0k"}, "nats", config.NATS{Token: "t0k"}, nil},
		{"user", &server.Options{Username: "u", Password: "p"}, "nats", config.NATS{User: "u", Password: "p"}, nil},
		{"user in URL", &server.Options{Username: "u", Password: "p@ss"}, "nats", config.NATS{},
			func(u string) string { return strings.Replace(u, "://", "://u:p%40ss@", 1) }},
		{"nkey", &server.Options{Nkeys: []*server.NkeyUser{{Nkey: upub}}}, "nats", config.NATS{NKeyFile: seedFile}, nil},
		{"creds", &server.Options{TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver}, "nats",
			config.NATS{CredsFile: credsFile}, nil},
		{"tls", pki.serverOpts(t), "tls", config.NATS{TLSCA: pki.ca, TLSCert: pki.clientCert, TLSKey: pki.clientKey}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := runServer(t, tc.opts)
			url := tc.scheme + "://" + srv.Addr().String()
			good := url
			if tc.url != nil {
				good = tc.url(url)
			}
			tc.cfg.URL, tc.cfg.MaxReconnects = good, -1
			opts, err := jetstream.ClientOptions(&tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			nc, err := jetstream.Connect("with", good, nil, discard(), opts...)
			if err != nil {
				t.Fatalf("with credentials: %v", err)
			}
			if _, err := nc.Request("$SYS.REQ.SERVER.PING", nil, time.Second); err != nil && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
				t.Errorf("request: %v", err)
			}
			if err := nc.Flush(); err != nil {
				t.Errorf("flush: %v", err)
			}
			nc.Close()

			var bare []nats.Option
			if tc.scheme == "tls" {
				bare = append(bare, nats.RootCAs(pki.ca)) // trusts the server, shows no certificate
			}
			if nc, err := jetstream.Connect("without", url, nil, discard(), append(bare, nats.MaxReconnects(0))...); err == nil {
				nc.Close()
				t.Fatal("a connection without credentials was accepted")
			}
		})
	}
}

// A credential file that cannot be read stops the start, naming its key.
func TestClientOptionsMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	for key, cfg := range map[string]config.NATS{
		"NATS_CREDS":    {CredsFile: missing},
		"NATS_NKEY":     {NKeyFile: missing},
		"NATS_TLS_CA":   {TLSCA: missing},
		"NATS_TLS_CERT": {TLSCert: missing, TLSKey: missing},
	} {
		_, err := jetstream.ClientOptions(&cfg)
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: err %v, want one naming %s", key, err, key)
		}
	}
}

func TestAuthModeAndRedact(t *testing.T) {
	for want, c := range map[string]config.NATS{
		"creds": {CredsFile: "x"}, "nkey": {NKeyFile: "x"}, "token": {Token: "x"}, "user": {User: "u", Password: "p"},
		"url": {URL: "nats://a:4222,nats://u:p@b:4222"}, "none": {URL: "nats://a:4222"},
	} {
		if got := jetstream.AuthMode(&c); got != want {
			t.Errorf("AuthMode(%+v) = %q, want %q", c, got, want)
		}
	}
	got := jetstream.RedactURL("nats://u:secret@a:4222,nats://tok3n@b:4222,nats://c:4222")
	if strings.Contains(got, "secret") || strings.Contains(got, "tok3n") || !strings.Contains(got, "nats://c:4222") {
		t.Errorf("RedactURL = %q", got)
	}
}

type pki struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func newPKI(t *testing.T, dir string) *pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		return writeFile(t, dir, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			writeFile(t, dir, name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	}
	p := &pki{ca: writeFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

// serverOpts require TLS and a client certificate signed by the CA.
func (p *pki) serverOpts(t *testing.T) *server.Options {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: p.serverCert, KeyFile: p.serverKey, CaFile: p.ca, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	return &server.Options{TLSConfig: tc, TLS: true, TLSVerify: true, TLSTimeout: 5}
}
