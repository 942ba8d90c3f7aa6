// Package host implements `cafe host`: enrol classic hosts (issue the
// credential their agent runs with) and list them.
package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/agent"
	"github.com/cafe-io/cafe/internal/cli/kubeflags"
	"github.com/cafe-io/cafe/internal/cli/table"
)

// NewCmd returns `cafe host`.
func NewCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := kubeflags.NewOptions(streams)
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Enrol and list classic hosts (VMs that run apps from packages)",
	}
	o.ConfigFlags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newEnrollCmd(&o), newListCmd(&o))
	return cmd
}

func newEnrollCmd(o *kubeflags.Options) *cobra.Command {
	var out string
	var validity, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "enroll HOST --out FILE",
		Short: "Issue a classic host's credential and write its agent's kubeconfig",
		Long: `Have the cluster's client signer (kubernetes.io/kube-apiserver-client)
issue the credential of a classic host's agent: user cafe:host:HOST in group
cafe:hosts, which admission lets write only that host and its Lease. The
key is made here and written, with the certificate, to a kubeconfig for
'cafe agent --kubeconfig'. You need create on certificatesigningrequests
and approve on the signer; the request records that you asked.`,
		Example: `  cafe host enroll vm-a-1 --out vm-a-1.kubeconfig`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
				return fmt.Errorf("host name %q: %v", name, errs)
			}
			if out == "" {
				return errors.New("--out: the file to write the host's kubeconfig to is required")
			}
			cfg, err := o.ConfigFlags.ToRESTConfig()
			if err != nil {
				return fmt.Errorf("loading the kubeconfig: %w (pass --kubeconfig or set KUBECONFIG)", err)
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return fmt.Errorf("connecting to the API server at %s: %w", cfg.Host, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cred, err := agent.Enroll(ctx, cs, name, validity)
			if err != nil {
				return err
			}
			kc, err := cred.Kubeconfig(cfg, name)
			if err != nil {
				return err
			}
			if err := clientcmd.WriteToFile(*kc, out); err != nil {
				return fmt.Errorf("writing %s: %w", out, err)
			}
			if err := os.Chmod(out, 0o600); err != nil {
				return fmt.Errorf("restricting %s to its owner: %w", out, err)
			}
			_, err = fmt.Fprintf(o.Out, "host %s enrolled: its agent's kubeconfig is %s (user %s)\n", name, out, cafev1alpha1.ClassicHostUser(name))
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the host's kubeconfig to (mode 0600)")
	cmd.Flags().DurationVar(&validity, "validity", agent.DefaultCredentialValidity, "how long the credential is valid (the signer may shorten it)")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the certificate")
	return cmd
}

func newListCmd(o *kubeflags.Options) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List classic hosts with their zone, address, readiness and instances",
		Long: `List classic hosts: zone, cell, address, readiness (Ready and its reason),
instances (ready/placed/capacity: those whose health check passes, those
placed on the host, the most it runs) and the agent's version. Without the
right to list ClassicInstances the instances column shows '-'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := o.ClientAndNamespace()
			if err != nil {
				return err
			}
			hosts := &cafev1alpha1.ClassicHostList{}
			if err := c.List(cmd.Context(), hosts); err != nil {
				return fmt.Errorf("listing classic hosts: %w", err)
			}
			counts, countErr := instanceCounts(cmd.Context(), c)
			w := table.NewWriter(o.Out)
			fmt.Fprintln(w, "NAME\tZONE\tCELL\tADDRESS\tREADY\tREASON\tINSTANCES\tAGENT")
			for _, h := range hosts.Items {
				ready, reason := "Unknown", ""
				if c := meta.FindStatusCondition(h.Status.Conditions, cafev1alpha1.ClassicHostReadyCondition); c != nil {
					ready, reason = string(c.Status), c.Reason
				}
				instances := "-"
				if countErr == nil {
					n := counts[h.Name]
					instances = fmt.Sprintf("%d/%d/%d", n.ready, n.placed, h.Spec.Capacity.Instances)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Spec.Zone, table.OrDash(h.Spec.Cell), h.Spec.Address, ready, table.OrDash(reason), instances, table.OrDash(h.Status.AgentVersion))
			}
			return w.Flush()
		},
	}
}

type instanceCount struct{ ready, placed int }

// instanceCounts counts the instances placed on each host, and the ready
// ones, across all namespaces.
func instanceCounts(ctx context.Context, c client.Client) (map[string]instanceCount, error) {
	list := &cafev1alpha1.ClassicInstanceList{}
	if err := c.List(ctx, list); err != nil {
		return nil, err
	}
	counts := map[string]instanceCount{}
	for _, inst := range list.Items {
		n := counts[inst.Spec.HostName]
		n.placed++
		if meta.IsStatusConditionTrue(inst.Status.Conditions, cafev1alpha1.ClassicInstanceReadyCondition) {
			n.ready++
		}
		counts[inst.Spec.HostName] = n
	}
	return counts, nil
}
