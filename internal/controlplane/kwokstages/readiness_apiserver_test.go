package kwokstages_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"text/template"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane/kwokstages"
	"github.com/cafe-io/cafe/test/framework"
)

var apiClient client.WithWatch

func TestMain(m *testing.M) {
	os.Exit(framework.EnvtestMain(m, func(cfg *rest.Config) (err error) {
		apiClient, err = framework.NewClient(cfg)
		return err
	}))
}

// stagePatch is one entry of a Stage's next.patches.
type stagePatch struct {
	Subresource string `json:"subresource"`
	Type        string `json:"type"`
	Template    string `json:"template"`
}

// readinessPatch returns the readiness-gates stage's one patch as shipped.
func readinessPatch(t *testing.T) stagePatch {
	t.Helper()
	stream, err := kwokstages.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(stream, "\n---\n") {
		var s struct {
			Metadata struct{ Name string }
			Spec     struct {
				Next struct{ Patches []stagePatch }
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
			t.Fatalf("stage does not parse: %v", err)
		}
		if s.Metadata.Name == "pod-readiness-gates" {
			if len(s.Spec.Next.Patches) != 1 {
				t.Fatalf("pod-readiness-gates has %d patches, want 1", len(s.Spec.Next.Patches))
			}
			return s.Spec.Next.Patches[0]
		}
	}
	t.Fatal("no pod-readiness-gates stage")
	return stagePatch{}
}

// render renders the stage's template for pod as kwok does: text/template
// over the object as JSON, with kwok's Now and Quote (as in kwok's
// pkg/utils/gotpl), the YAML it produces turned into JSON.
func render(t *testing.T, tpl string, pod *corev1.Pod) []byte {
	t.Helper()
	funcs := template.FuncMap{
		"Now": func() string { return time.Now().Format(time.RFC3339Nano) },
		"Quote": func(s any) string {
			data, _ := json.Marshal(s)
			return string(data)
		},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pod)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := template.Must(template.New("stage").Funcs(funcs).Parse(tpl)).Execute(&buf, obj); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.YAMLToJSON(buf.Bytes())
	if err != nil {
		t.Fatalf("rendered template is not YAML: %v\n%s", err, buf.String())
	}
	return out
}

// apply sends the rendered patch the way kwok does: the stage's patch type
// and subresource.
func apply(ctx context.Context, p stagePatch, pod *corev1.Pod, body []byte) error {
	patchType := map[string]types.PatchType{"strategic": types.StrategicMergePatchType, "merge": types.MergePatchType, "json": types.JSONPatchType}[p.Type]
	target := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}}
	if p.Subresource == "status" {
		return apiClient.Status().Patch(ctx, target, client.RawPatch(patchType, body))
	}
	return apiClient.Patch(ctx, target, client.RawPatch(patchType, body))
}

func readyOf(pod *corev1.Pod) corev1.PodCondition {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c
		}
	}
	return corev1.PodCondition{}
}

func setGate(ctx context.Context, g Gomega, pod *corev1.Pod, status corev1.ConditionStatus) *corev1.Pod {
	updated := pod.DeepCopy()
	for i := range updated.Status.Conditions {
		if updated.Status.Conditions[i].Type == cafev1alpha1.TrafficReadyCondition {
			updated.Status.Conditions[i].Status = status
		}
	}
	g.Expect(apiClient.Status().Update(ctx, updated)).To(Succeed())
	return updated
}

// At 10,000 pods kwok's informer ran behind the pods: it judged Ready from
// a version whose gate was still open and wrote Ready True after CAFE had
// closed the gate, and the EndpointSlice controller listed the drained pod
// again. The stage writes only on the version it judged.
func TestReadinessStageWritesOnlyOnTheVersionItJudged(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	p := readinessPatch(t)
	g.Expect(p.Subresource).To(Equal("status"))

	pod := framework.RunningGatedPod(ctx, g, apiClient, "default", "judged", corev1.ConditionFalse)

	// kwok sees the gate open and Ready False (the stage's selector
	// matches) and renders Ready True; before it writes, the gate closes.
	seen := setGate(ctx, g, pod, corev1.ConditionTrue)
	stale := render(t, p.Template, seen)
	closed := setGate(ctx, g, seen, corev1.ConditionFalse)
	err := apply(ctx, p, seen, stale)
	g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "a Ready judged on a stale version must be refused, got %v", err)
	after := &corev1.Pod{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), after)).To(Succeed())
	g.Expect(readyOf(after).Status).To(Equal(corev1.ConditionFalse), "the closed gate keeps the pod unready")

	// Judged on the current version, the write lands.
	reopened := setGate(ctx, g, closed, corev1.ConditionTrue)
	g.Expect(apply(ctx, p, reopened, render(t, p.Template, reopened))).To(Succeed())
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), after)).To(Succeed())
	g.Expect(readyOf(after).Status).To(Equal(corev1.ConditionTrue))

	// And the other way: the gate closed, Ready False with the stage's reason.
	shut := setGate(ctx, g, after, corev1.ConditionFalse)
	g.Expect(apply(ctx, p, shut, render(t, p.Template, shut))).To(Succeed())
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), after)).To(Succeed())
	g.Expect(readyOf(after).Status).To(Equal(corev1.ConditionFalse))
	g.Expect(readyOf(after).Reason).To(Equal("ReadinessGatesNotReady"))
}
