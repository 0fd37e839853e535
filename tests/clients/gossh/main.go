// gossh logs in with a private key using golang.org/x/crypto/ssh and runs one
// command, printing its output and the negotiated session identity. It exists
// so the ssh_hardening Molecule verify can prove that Go clients (Terraform,
// Packer, k8s tooling) still connect after hardening.
//
// Usage: gossh -addr 127.0.0.1:22 -user operator -key id_ed25519 [-kex a,b] -- id -un
//
// -kex limits the offered key exchanges, to play an older client.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:22", "host:port of the SSH server")
	user := flag.String("user", "", "account to log in as")
	keyPath := flag.String("key", "", "private key file (unencrypted)")
	kex := flag.String("kex", "", "comma-separated key exchanges to offer (default: the library's)")
	flag.Parse()

	pem, err := os.ReadFile(*keyPath)
	if err != nil {
		fail("read key: %v", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		fail("parse key: %v", err)
	}
	config := &ssh.ClientConfig{
		User: *user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		// The lab's host keys are throwaway; host-key pinning is not what is tested.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec
		Timeout:         10 * time.Second,
	}
	if *kex != "" {
		config.KeyExchanges = strings.Split(*kex, ",")
	}
	client, err := ssh.Dial("tcp", *addr, config)
	if err != nil {
		fail("dial: %v", err)
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		fail("session: %v", err)
	}
	defer session.Close()
	out, err := session.CombinedOutput(strings.Join(flag.Args(), " "))
	if err != nil {
		fail("run: %v: %s", err, out)
	}
	fmt.Print(string(out))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gossh: "+format+"\n", args...)
	os.Exit(1)
}
