package cafedeployment_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/builders"
	"github.com/cafe-io/cafe/test/framework"
)

var zones = []string{"zone-a", "zone-b", "zone-c"}

// newCafeDeployment is a CafeDeployment of 6 pods over three zones running
// image, released with a beta group then groups of 2, each group waiting
// for a confirmation.
func newCafeDeployment(ns, name, image string) *cafev1alpha1.CafeDeployment {
	return builders.CafeDeployment(ns, name, image, cafev1alpha1.CafeDeploymentStrategy{
		UpgradeType:           cafev1alpha1.UpgradeTypeBeta,
		BatchSize:             ptr.To(intstr.FromInt32(2)),
		NeedWaitingForConfirm: ptr.To(true),
	})
}

// createDeployment creates cd and deletes it when the test ends, so its
// controller stops acting in a namespace that envtest never empties.
func createDeployment(ctx context.Context, t testing.TB, g *WithT, cd *cafev1alpha1.CafeDeployment) {
	g.Expect(suite.Client.Create(ctx, cd)).To(Succeed())
	t.Cleanup(func() {
		_ = suite.Client.Delete(context.Background(), cd)
		// No garbage collector runs: delete the pod sets too.
		_ = suite.Client.DeleteAllOf(context.Background(), &cafev1alpha1.InPlaceSet{}, client.InNamespace(cd.Namespace))
	})
}

func getDeployment(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment) *cafev1alpha1.CafeDeployment {
	return framework.Get(ctx, g, suite.Client, cd)
}

// updateDeployment changes cd, retrying on conflicts with the controller's
// status writes.
func updateDeployment(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, mutate func(*cafev1alpha1.CafeDeployment)) {
	g.Expect(framework.Update(ctx, suite.Client, cd.DeepCopy(), mutate)).To(Succeed())
}

// podSet returns the InPlaceSet of one unit.
func podSet(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, unit string) *cafev1alpha1.InPlaceSet {
	s := &cafev1alpha1.InPlaceSet{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: cd.Name + "-" + unit}, s)).To(Succeed())
	return s
}

// podsByUnit lists the namespace's pods by their unit label.
func podsByUnit(ctx context.Context, g Gomega, ns string) map[string][]corev1.Pod {
	list := &corev1.PodList{}
	g.Expect(suite.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	out := map[string][]corev1.Pod{}
	for _, p := range list.Items {
		out[p.Labels[cafev1alpha1.UnitLabel]] = append(out[p.Labels[cafev1alpha1.UnitLabel]], p)
	}
	return out
}

// confirm records a confirmation of group as the admission webhook would
// after `cafe deploy confirm` by user (the webhook does not run here).
func confirm(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, group int, user string) {
	updateDeployment(ctx, g, cd, func(cd *cafev1alpha1.CafeDeployment) {
		if cd.Annotations == nil {
			cd.Annotations = map[string]string{}
		}
		cd.Annotations[cafev1alpha1.ConfirmGroupAnnotation] = fmt.Sprint(group)
		cd.Annotations[cafev1alpha1.ConfirmedByAnnotation] = user
		cd.Annotations[cafev1alpha1.ConfirmedAtAnnotation] = time.Now().UTC().Format(time.RFC3339)
	})
}
