package admit

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// thing stands for the objects webhooks decode.
type thing struct {
	Name      string `json:"name"`
	StampedBy string `json:"stampedBy,omitempty"`
}

func request(op admissionv1.Operation, object, old string) admission.Request {
	return requestBy("alice", op, object, old)
}

func requestBy(user string, op admissionv1.Operation, object, old string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: op,
		UserInfo:  authenticationv1.UserInfo{Username: user},
		Object:    runtime.RawExtension{Raw: []byte(object)},
		OldObject: runtime.RawExtension{Raw: []byte(old)},
	}}
}

func TestDecodeChange(t *testing.T) {
	tests := []struct {
		name     string
		req      admission.Request
		obj, old thing
		wantErr  string
	}{
		{name: "a create has no old object", req: request(admissionv1.Create, `{"name":"b"}`, ""), obj: thing{Name: "b"}},
		{name: "an update has both", req: request(admissionv1.Update, `{"name":"b"}`, `{"name":"a"}`), obj: thing{Name: "b"}, old: thing{Name: "a"}},
		{name: "an undecodable object is named", req: request(admissionv1.Create, `{`, ""), wantErr: "decoding Thing: unexpected end of JSON input"},
		{name: "an undecodable old object is named as the old one", req: request(admissionv1.Update, `{"name":"b"}`, `[]`), wantErr: "decoding the old Thing: json: cannot unmarshal array into Go value of type admit.thing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var obj, old thing
			err := DecodeChange(tt.req, "Thing", &obj, &old)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(obj).To(Equal(tt.obj))
			g.Expect(old).To(Equal(tt.old))
		})
	}
}

func TestStamp(t *testing.T) {
	at := time.Date(2026, 5, 1, 22, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	// stampNew stamps a change of name, and refuses a client's own stamp.
	stampNew := func(old, obj *thing, user string, now time.Time) (bool, error) {
		if obj.StampedBy != old.StampedBy {
			return false, errors.New("stampedBy: set by CAFE")
		}
		if obj.Name == old.Name {
			return false, nil
		}
		obj.StampedBy = user + "@" + now.Format(time.RFC3339)
		return true, nil
	}
	tests := []struct {
		name        string
		req         admission.Request
		wantAllowed bool
		wantResult  *metav1.Status
		wantPatches []string
	}{
		{name: "a change is answered with the patch of the stamp", req: request(admissionv1.Update, `{"name":"b"}`, `{"name":"a"}`),
			wantAllowed: true, wantPatches: []string{"add /stampedBy alice@2026-05-01T22:00:00Z"}},
		{name: "a create is a change from nothing", req: request(admissionv1.Create, `{"name":"a"}`, ""),
			wantAllowed: true, wantPatches: []string{"add /stampedBy alice@2026-05-01T22:00:00Z"}},
		{name: "nothing to stamp is allowed as it is, with the reason", req: request(admissionv1.Update, `{"name":"a"}`, `{"name":"a"}`),
			wantAllowed: true, wantResult: &metav1.Status{Code: http.StatusOK, Message: "no change"}},
		{name: "the stamper's error denies the request", req: request(admissionv1.Update, `{"name":"b","stampedBy":"mallory"}`, `{"name":"a"}`),
			wantResult: &metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: "stampedBy: set by CAFE"}},
		{name: "an undecodable request is a bad request", req: request(admissionv1.Create, `{`, ""),
			wantResult: &metav1.Status{Code: http.StatusBadRequest, Message: "decoding Thing: unexpected end of JSON input"}},
		{name: "a user name longer than CAFE records is refused, not cut", req: requestBy(strings.Repeat("u", 513), admissionv1.Update, `{"name":"b"}`, `{"name":"a"}`),
			wantResult: &metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
				Message: "the authenticated user name is 513 bytes long; CAFE records the user of a Thing change and keeps names of at most 512 bytes"}},
		{name: "a user name of the longest length recorded is stamped", req: requestBy(strings.Repeat("u", 512), admissionv1.Update, `{"name":"b"}`, `{"name":"a"}`),
			wantAllowed: true, wantPatches: []string{"add /stampedBy " + strings.Repeat("u", 512) + "@2026-05-01T22:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			resp := Stamp(tt.req, "Thing", "no change", clock, stampNew)
			g.Expect(resp.Allowed).To(Equal(tt.wantAllowed))
			g.Expect(resp.Result).To(Equal(tt.wantResult))
			var patches []string
			for _, p := range resp.Patches {
				patches = append(patches, fmt.Sprintf("%s %s %v", p.Operation, p.Path, p.Value))
			}
			g.Expect(patches).To(Equal(tt.wantPatches))
		})
	}
}

func TestStampWithoutAClockUsesTheTimeOfDay(t *testing.T) {
	g := NewWithT(t)
	var got time.Time
	before := time.Now()
	Stamp(request(admissionv1.Create, `{}`, ""), "Thing", "", nil, func(_, _ *thing, _ string, now time.Time) (bool, error) {
		got = now
		return false, nil
	})
	g.Expect(got).To(BeTemporally(">=", before))
	g.Expect(got).To(BeTemporally("<=", time.Now()))
}

func TestVerdict(t *testing.T) {
	g := NewWithT(t)
	allowed := Verdict(nil)
	g.Expect(allowed.Allowed).To(BeTrue())
	g.Expect(allowed.Result.Message).To(BeEmpty())

	denied := Verdict(errors.New("spec.x: wrong"))
	g.Expect(denied.Allowed).To(BeFalse())
	g.Expect(denied.Result.Code).To(Equal(int32(http.StatusForbidden)))
	g.Expect(denied.Result.Message).To(Equal("spec.x: wrong"))
}
