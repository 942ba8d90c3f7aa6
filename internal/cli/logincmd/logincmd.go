// Package logincmd is `cafe login` and `cafe credential`: a directory
// user logs in once with their password and gets a kubeconfig whose user
// is the exec credential plugin `cafe credential`, which hands kubectl (and
// every client-go tool) a Kubernetes credential that lives a minute,
// renewed with the day's refresh credential; each renewal asks the
// directory again. The password is sent once, to the login service, and
// kept nowhere (docs/iam.md).
package logincmd

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/login"
)

// options are the flags both commands share.
type options struct {
	streams       genericiooptions.IOStreams
	server        string
	caFile        string
	user          string
	cacheDir      string
	passwordStdin bool
	kubeconfig    string
	output        string
}

func (o *options) addServerFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "the login service's https URL (CAFE's; `cafe dev up` prints it)")
	f.StringVar(&o.caFile, "certificate-authority", "", "PEM file of the CA that signed the login service's certificate")
	f.StringVar(&o.user, "user", "", "your directory user name")
	f.StringVar(&o.cacheDir, "cache-dir", defaultCacheDir(), "where the refresh credential is kept (mode 0600)")
	_ = cmd.MarkFlagRequired("server")
	_ = cmd.MarkFlagRequired("certificate-authority")
	_ = cmd.MarkFlagRequired("user")
}

func defaultCacheDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "cafe", "login")
	}
	return filepath.Join(os.TempDir(), "cafe-login")
}

// NewCmd is `cafe login`.
func NewCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{streams: streams}
	cmd := &cobra.Command{
		Use:   "login --server URL --certificate-authority FILE --user NAME --kubeconfig FILE --output FILE",
		Short: "Log in with your directory password and write a kubeconfig whose credential renews itself",
		Long: `Log in with your directory (LDAP) password. CAFE's login service checks it with
the directory and answers with a Kubernetes credential naming you and your
directory groups (dir:<name>), valid for a minute, and a refresh credential
for the working day. The kubeconfig written to --output takes the cluster of
--kubeconfig's current context and, as its user, the exec credential plugin
"cafe credential", which renews the credential when it expires: each renewal
asks the directory again, so a group you left or an account disabled stops
working within a minute. The password is sent once and kept nowhere.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.login(cmd.Context()) },
	}
	o.addServerFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from the first line of standard input (scripts); otherwise it is asked for on the terminal")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig whose current context names the cluster (default: $KUBECONFIG, ~/.kube/config)")
	f.StringVar(&o.output, "output", "", "kubeconfig file to write")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// NewCredentialCmd is `cafe credential`, the exec credential plugin.
func NewCredentialCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{streams: streams}
	cmd := &cobra.Command{
		Use:    "credential --server URL --certificate-authority FILE --user NAME",
		Short:  "Print a Kubernetes credential for kubectl (exec credential plugin written by cafe login)",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE:   func(cmd *cobra.Command, _ []string) error { return o.credential(cmd.Context()) },
	}
	o.addServerFlags(cmd)
	return cmd
}

// cached is what the cache file holds for one server and user.
type cached struct {
	login.Response
}

func (o *options) cacheFile() string {
	sum := sha256.Sum256([]byte(o.server + "\x00" + o.user))
	return filepath.Join(o.cacheDir, hex.EncodeToString(sum[:12])+".json")
}

func (o *options) client() (login.Client, error) {
	pem, err := os.ReadFile(o.caFile)
	if err != nil {
		return login.Client{}, fmt.Errorf("--certificate-authority: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return login.Client{}, fmt.Errorf("--certificate-authority: %s holds no PEM certificate", o.caFile)
	}
	return login.Client{Server: o.server, RootCAs: roots}, nil
}

func (o *options) login(ctx context.Context) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	password, err := o.readPassword()
	if err != nil {
		return err
	}
	resp, err := c.Login(ctx, o.user, password)
	if errors.Is(err, login.ErrDenied) {
		return errors.New("login refused: wrong user name or password, or the account is disabled")
	}
	if err != nil {
		return err
	}
	if err := o.save(resp); err != nil {
		return err
	}
	if err := o.writeKubeconfig(); err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "logged in as %s%s (groups: %s); kubeconfig written to %s; the credential renews itself until %s\n",
		cafev1alpha1.DirectoryPrefix, resp.User, strings.Join(resp.Groups, ", "), o.output, resp.RefreshExpiry.Local().Format(time.RFC3339))
	return nil
}

func (o *options) readPassword() (string, error) {
	if o.passwordStdin {
		line, err := bufio.NewReader(o.streams.In).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	f, ok := o.streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("no terminal to ask the password on: use --password-stdin")
	}
	fmt.Fprintf(o.streams.ErrOut, "password for %s: ", o.user)
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(o.streams.ErrOut)
	return string(pw), err
}

func (o *options) save(resp login.Response) error {
	if err := os.MkdirAll(o.cacheDir, 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(cached{Response: resp})
	if err != nil {
		return err
	}
	tmp := o.cacheFile() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, o.cacheFile())
}

// writeKubeconfig writes --output: the cluster of --kubeconfig's current
// context, and this user as the exec plugin.
func (o *options) writeKubeconfig() error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	base, err := rules.Load()
	if err != nil {
		return fmt.Errorf("loading the kubeconfig: %w", err)
	}
	ctx, ok := base.Contexts[base.CurrentContext]
	if !ok {
		return errors.New("the kubeconfig has no current context to take the cluster from")
	}
	cluster, ok := base.Clusters[ctx.Cluster]
	if !ok {
		return fmt.Errorf("the kubeconfig's context %s names no cluster", base.CurrentContext)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	caFile, err := filepath.Abs(o.caFile)
	if err != nil {
		return err
	}
	name := cafev1alpha1.DirectoryPrefix + o.user
	out := clientcmdapi.NewConfig()
	out.Clusters[ctx.Cluster] = cluster
	out.AuthInfos[name] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
		APIVersion:      clientauthv1.SchemeGroupVersion.String(),
		Command:         self,
		Args:            []string{"credential", "--server", o.server, "--certificate-authority", caFile, "--user", o.user, "--cache-dir", o.cacheDir},
		InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
	}}
	out.Contexts[name] = &clientcmdapi.Context{Cluster: ctx.Cluster, AuthInfo: name, Namespace: ctx.Namespace}
	out.CurrentContext = name
	return clientcmd.WriteToFile(*out, o.output)
}

// renewBefore: a credential this close to its expiry is renewed first.
const renewBefore = 10 * time.Second

func (o *options) credential(ctx context.Context) error {
	raw, err := os.ReadFile(o.cacheFile())
	if err != nil {
		return fmt.Errorf("no login of %s at %s: run cafe login", o.user, o.server)
	}
	var c cached
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("the login cache %s is damaged: run cafe login", o.cacheFile())
	}
	if time.Until(c.Expiry) < renewBefore {
		cl, err := o.client()
		if err != nil {
			return err
		}
		resp, err := cl.Refresh(ctx, c.RefreshToken)
		if errors.Is(err, login.ErrDenied) {
			_ = os.Remove(o.cacheFile())
			return fmt.Errorf("the login of %s has expired or was revoked (account disabled or removed): run cafe login", o.user)
		}
		if err != nil {
			return err
		}
		c.Response = resp
		if err := o.save(resp); err != nil {
			return err
		}
	}
	ec := clientauthv1.ExecCredential{
		TypeMeta: metav1.TypeMeta{APIVersion: clientauthv1.SchemeGroupVersion.String(), Kind: "ExecCredential"},
		Status:   &clientauthv1.ExecCredentialStatus{Token: c.Token, ExpirationTimestamp: &metav1.Time{Time: c.Expiry}},
	}
	return json.NewEncoder(o.streams.Out).Encode(ec)
}
