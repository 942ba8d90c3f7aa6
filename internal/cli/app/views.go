package app

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/table"
)

func sortRevisions(revs []cafev1alpha1.AppRevision) {
	sort.Slice(revs, func(i, j int) bool { return revs[i].Spec.Number < revs[j].Spec.Number })
}

func conditionStatus(app *cafev1alpha1.CafeAppService, t string) string {
	if c := meta.FindStatusCondition(app.Status.Conditions, t); c != nil {
		return string(c.Status)
	}
	return "-"
}

// list prints the apps of the namespace.
func (o *Options) list(ctx context.Context) error {
	list := &cafev1alpha1.CafeAppServiceList{}
	ns, err := o.List(ctx, appKind, list)
	if err != nil {
		return err
	}
	if len(list.Items) == 0 {
		fmt.Fprintf(o.Out, "No CafeAppServices in namespace %s\n", ns)
		return nil
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	w := table.NewWriter(o.Out)
	fmt.Fprintln(w, "NAME\tLATEST\tPUBLISHED\tLAST-SUCCESSFUL\tREADY\tRELEASING")
	for i := range list.Items {
		a := &list.Items[i]
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, table.OrDash(a.Status.LatestRevision), table.OrDash(a.Spec.PublishedRevision), table.OrDash(a.Status.LastSuccessfulRevision),
			conditionStatus(a, cafev1alpha1.AppReadyCondition), conditionStatus(a, cafev1alpha1.AppReleasingCondition))
	}
	return w.Flush()
}

// get prints one app: revisions, Service, release and conditions.
func (o *Options) get(ctx context.Context, name, output string) error {
	c, app, err := o.getApp(ctx, name)
	if err != nil {
		return err
	}
	if output != "" {
		return table.PrintObject(o.Out, app, output)
	}
	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(app), svc); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading Service %s/%s: %w", app.Namespace, app.Name, err)
		}
		svc = nil
	}
	cd := &cafev1alpha1.CafeDeployment{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(app), cd); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading CafeDeployment %s/%s: %w", app.Namespace, app.Name, err)
		}
		cd = nil
	}
	printApp(o.Out, app, svc, cd)
	return nil
}

func printApp(out io.Writer, app *cafev1alpha1.CafeAppService, svc *corev1.Service, cd *cafev1alpha1.CafeDeployment) {
	fmt.Fprintf(out, "App:              %s/%s\n", app.Namespace, app.Name)
	fmt.Fprintf(out, "Latest revision:  %s\n", table.OrDash(app.Status.LatestRevision))
	fmt.Fprintf(out, "Published:        %s", table.OrDash(app.Spec.PublishedRevision))
	if by := app.Annotations[cafev1alpha1.PublishedByAnnotation]; by != "" {
		fmt.Fprintf(out, " (by %s at %s)", by, app.Annotations[cafev1alpha1.PublishedAtAnnotation])
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "Last successful:  %s\n", table.OrDash(app.Status.LastSuccessfulRevision))
	if svc != nil {
		var ports []string
		for _, p := range svc.Spec.Ports {
			ports = append(ports, fmt.Sprintf("%d/%s->%s", p.Port, p.Protocol, p.TargetPort.String()))
		}
		fmt.Fprintf(out, "Service:          %s %s %s %s\n", svc.Name, svc.Spec.Type, table.OrDash(svc.Spec.ClusterIP), strings.Join(ports, ","))
	} else {
		fmt.Fprintf(out, "Service:          -\n")
	}
	fmt.Fprintf(out, "Endpoints:        %s\n", endpointsWriter(app.Spec.Workload.Endpoints))
	if cd != nil {
		r := cd.Status.Release
		fmt.Fprintf(out, "Release:          %s at group %d of %d; %d of %d pods updated, %d available (cafe deploy status %s -n %s)\n",
			table.OrDash(string(r.Phase)), ptr.Deref(r.CurrentGroup, 0), ptr.Deref(r.TotalGroups, 0),
			ptr.Deref(cd.Status.UpdatedReplicas, 0), ptr.Deref(cd.Spec.Replicas, 0), ptr.Deref(cd.Status.AvailableReplicas, 0), cd.Name, cd.Namespace)
	} else {
		fmt.Fprintf(out, "Release:          - (nothing published yet)\n")
	}
	fmt.Fprintln(out, "Conditions:")
	w := table.NewWriter(out)
	fmt.Fprintln(w, "  TYPE\tSTATUS\tREASON\tMESSAGE")
	for _, c := range app.Status.Conditions {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	_ = w.Flush()
	fmt.Fprintln(out, "Revisions (newest first):")
	w = table.NewWriter(out)
	fmt.Fprintln(w, "  NAME\tHASH\tCREATED\tOUTCOME")
	for _, r := range app.Status.Revisions {
		created := r.Created
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", r.Name, r.Hash, table.Timestamp(&created), table.OrDash(string(r.Outcome)))
	}
	_ = w.Flush()
}

// endpointsWriter says who lists the app's pods in its Service's
// EndpointSlices, and so how a release drains a pod.
func endpointsWriter(e cafev1alpha1.AppEndpoints) string {
	if e == cafev1alpha1.AppEndpointsCAFE {
		return "written by CAFE (the Service has no selector; a release takes a pod out of its EndpointSlices)"
	}
	return "the Service's selector (a release closes a pod's readiness gate)"
}

// revisions prints one line per revision, oldest first.
func (o *Options) revisions(ctx context.Context, name string) error {
	_, app, revs, err := o.getAppAndRevisions(ctx, name)
	if err != nil {
		return err
	}
	if len(revs) == 0 {
		fmt.Fprintf(o.Out, "%s has no revisions yet: CAFE records the first one when it sees the app\n", ref(app))
		return nil
	}
	w := table.NewWriter(o.Out)
	fmt.Fprintln(w, "REVISION\tHASH\tCREATED\tIMAGES\tCONFIGMAP\tOUTCOME\tPUBLISHED-BY\tMARK")
	for i := range revs {
		r := &revs[i]
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Spec.Hash, table.Timestamp(ptr.To(r.CreationTimestamp)), images(r), table.OrDash(r.Spec.ConfigMapName),
			table.OrDash(string(r.Status.Outcome)), table.OrDash(r.Status.PublishedBy), table.OrDash(marks(app, r.Name)))
	}
	return w.Flush()
}

// marks says which of the app's revision roles name holds.
func marks(app *cafev1alpha1.CafeAppService, name string) string {
	var m []string
	if name == app.Status.LatestRevision {
		m = append(m, "latest")
	}
	if name == app.Spec.PublishedRevision {
		m = append(m, "published")
	}
	if name == app.Status.LastSuccessfulRevision {
		m = append(m, "last-successful")
	}
	return strings.Join(m, ",")
}
