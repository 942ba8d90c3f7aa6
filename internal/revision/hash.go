package revision

import (
	"encoding/json"
	"fmt"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// TemplateHash names a revision: a short stable hash of the pod template.
func TemplateHash(template *corev1.PodTemplateSpec) string {
	data, err := json.Marshal(template)
	if err != nil {
		panic(fmt.Sprintf("encoding a pod template cannot fail: %v", err))
	}
	h := fnv.New32a()
	h.Write(data)
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}
