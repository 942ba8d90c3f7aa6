package conflict

import (
	"errors"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
)

func TestRequeueRetriesSoonOnlyWhenEveryErrorIsAConflict(t *testing.T) {
	g := NewWithT(t)
	lost := fmt.Errorf("writing: %w", apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "p", errors.New("changed")))
	other := errors.New("boom")

	res, err := Requeue(ctrl.Result{}, lost)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(Equal(Retry))

	res, err = Requeue(ctrl.Result{}, errors.Join(lost, nil, lost))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(Equal(Retry))

	g.Expect(Only(errors.Join(lost, fmt.Errorf("wrapped: %w", lost)))).To(BeTrue())
	g.Expect(Only(other)).To(BeFalse())
	_, err = Requeue(ctrl.Result{}, errors.Join(lost, other))
	g.Expect(err).To(MatchError(other), "a real failure keeps its backoff")

	res, err = Requeue(ctrl.Result{RequeueAfter: 7}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(BeEquivalentTo(7), "success is returned as is")
}
