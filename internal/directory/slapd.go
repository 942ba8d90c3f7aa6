package directory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// SlapdConfig is one OpenLDAP server on loopback, serving LDAPS only.
type SlapdConfig struct {
	// Dir holds its configuration (slapd.d), database and seed; it is
	// created, and a server prepared on a Dir that holds a database keeps
	// it (a restart, not a new directory).
	Dir string
	// Port is its LDAPS port on 127.0.0.1.
	Port int
	// CertFile and KeyFile are its serving certificate (for 127.0.0.1) and
	// key, PEM.
	CertFile, KeyFile string
	// Directory is what a new database is seeded with.
	Directory Directory
}

// Slapd is a prepared server: the command that runs it in the foreground,
// and what a client needs to reach it.
type Slapd struct {
	// Binary and Args run slapd in the foreground (it logs to stderr).
	Binary string
	Args   []string
	// URL is ldaps://127.0.0.1:<port>.
	URL string
	// ReaderPassword is the password of Directory.ReaderDN, generated
	// with the database and kept in Dir (mode 0600).
	ReaderPassword string
	// AdminPassword is the password of Directory.AdminDN (the directory's
	// administrator, who changes users and groups), generated and kept
	// likewise.
	AdminPassword string
}

// ReaderPasswordFile is the file, in SlapdConfig.Dir, holding the reader's
// password (mode 0600).
const ReaderPasswordFile = "reader-password"

// AdminPasswordFile is the file, in SlapdConfig.Dir, holding the
// administrator's password (mode 0600).
const AdminPasswordFile = "admin-password"

// slapdModules is where Debian's slapd package keeps its modules.
const slapdModules = "/usr/lib/ldap"

// SlapdBinaries finds slapd and slapadd (Debian's slapd package).
func SlapdBinaries() (slapd, slapadd string, err error) {
	slapd, err = exec.LookPath("slapd")
	if err != nil {
		// Debian installs it in /usr/sbin, not on every user's PATH.
		slapd = "/usr/sbin/slapd"
	}
	slapadd = filepath.Join(filepath.Dir(slapd), "slapadd")
	for _, b := range []string{slapd, slapadd} {
		if _, err := os.Stat(b); err != nil {
			return "", "", errors.New("OpenLDAP's slapd is not installed: run make tools (it installs Debian's slapd package)")
		}
	}
	return slapd, slapadd, nil
}

// PrepareSlapd writes the server's configuration and, the first time, its
// seeded database under cfg.Dir, and returns how to run it.
func PrepareSlapd(ctx context.Context, cfg SlapdConfig) (*Slapd, error) {
	slapd, slapadd, err := SlapdBinaries()
	if err != nil {
		return nil, err
	}
	confDir, dataDir := filepath.Join(cfg.Dir, "slapd.d"), filepath.Join(cfg.Dir, "data")
	secretFile := filepath.Join(cfg.Dir, ReaderPasswordFile)
	s := &Slapd{Binary: slapd, URL: "ldaps://127.0.0.1:" + strconv.Itoa(cfg.Port)}
	s.Args = []string{"-d", "0", "-h", s.URL + "/", "-F", confDir}
	adminFile := filepath.Join(cfg.Dir, AdminPasswordFile)
	if raw, err := os.ReadFile(secretFile); err == nil {
		admin, err := os.ReadFile(adminFile)
		if err != nil {
			return nil, err
		}
		s.ReaderPassword, s.AdminPassword = string(raw), string(admin)
		return s, nil
	}
	for _, d := range []string{confDir, dataDir} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	seed, err := randomSecret()
	if err != nil {
		return nil, err
	}
	ldif, err := cfg.Directory.SeedLDIF(seed)
	if err != nil {
		return nil, fmt.Errorf("the directory's seed: %w", err)
	}
	admin, err := randomSecret()
	if err != nil {
		return nil, err
	}
	adminHash, err := ssha512(admin)
	if err != nil {
		return nil, err
	}
	if err := slapadd0(ctx, slapadd, confDir, configLDIF(cfg, dataDir, adminHash)); err != nil {
		return nil, err
	}
	if err := os.WriteFile(adminFile, []byte(admin), 0o600); err != nil {
		return nil, err
	}
	if err := run(ctx, slapadd, []string{"-n1", "-F", confDir, "-l", "/dev/stdin"}, ldif); err != nil {
		return nil, fmt.Errorf("seeding the directory: %w", err)
	}
	// Written last: a Dir with this file holds a complete database.
	if err := os.WriteFile(secretFile, []byte(seed), 0o600); err != nil {
		return nil, err
	}
	s.ReaderPassword, s.AdminPassword = seed, admin
	return s, nil
}

func slapadd0(ctx context.Context, slapadd, confDir, ldif string) error {
	if err := run(ctx, slapadd, []string{"-n0", "-F", confDir, "-l", "/dev/stdin"}, ldif); err != nil {
		return fmt.Errorf("writing slapd's configuration: %w", err)
	}
	return nil
}

// configLDIF is cn=config: the modules (mdb, the password policy, salted
// SHA-2 hashes), the schemas, TLS, and one database whose only access is
// the reader's reads, each user's bind with their own password, and the
// administrator (the database's root, adminHash its password's hash).
func configLDIF(cfg SlapdConfig, dataDir, adminHash string) string {
	d := cfg.Directory
	return strings.Join([]string{
		"dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcTLSCertificateFile: " + cfg.CertFile + "\nolcTLSCertificateKeyFile: " + cfg.KeyFile +
			"\nolcTLSProtocolMin: 3.3\nolcDisallows: bind_anon\nolcRequires: authc\n",
		"dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\nolcModulePath: " + slapdModules +
			"\nolcModuleLoad: back_mdb\nolcModuleLoad: ppolicy\nolcModuleLoad: pw-sha2\n",
		"dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n",
		"include: file:///etc/ldap/schema/core.ldif\n",
		"include: file:///etc/ldap/schema/cosine.ldif\n",
		"include: file:///etc/ldap/schema/inetorgperson.ldif\n",
		"dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\n",
		"dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {0}config\nolcAccess: {0}to * by * none\n",
		"dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\nolcDatabase: {1}mdb\nolcSuffix: " + d.Base +
			"\nolcDbDirectory: " + dataDir + "\nolcDbMaxSize: 104857600" +
			"\nolcRootDN: " + d.AdminDN() + "\nolcRootPW: " + adminHash +
			"\nolcAccess: {0}to attrs=userPassword by anonymous auth by * none" +
			"\nolcAccess: {1}to * by dn.exact=\"" + d.ReaderDN() + "\" read by * none\n",
		"dn: olcOverlay={0}ppolicy,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\nobjectClass: olcPPolicyConfig\nolcOverlay: {0}ppolicy\nolcPPolicyDefault: " +
			d.policyDN() + "\nolcPPolicyUseLockout: TRUE\n",
	}, "\n")
}

// run runs a tool with stdin, its output in the error.
func run(ctx context.Context, binary string, args []string, stdin string) error {
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(binary), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func randomSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating the reader's password: %w", err)
	}
	return hex.EncodeToString(b), nil
}
