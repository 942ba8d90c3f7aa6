package admit

import (
	"context"
	"fmt"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Self is the user CAFE's own client authenticates as, which the API
// server names in a SelfSubjectReview: the identity that alone may write
// what only CAFE writes (AppRevisions). It is asked once and kept.
type Self struct {
	Client client.Client

	mu   sync.Mutex
	name string
}

// Username returns the user CAFE authenticates as.
func (s *Self) Username(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.name != "" {
		return s.name, nil
	}
	review := &authenticationv1.SelfSubjectReview{}
	if err := s.Client.Create(ctx, review); err != nil {
		return "", fmt.Errorf("asking the API server who CAFE is (SelfSubjectReview): %w", err)
	}
	if review.Status.UserInfo.Username == "" {
		return "", fmt.Errorf("the API server's SelfSubjectReview names no user for CAFE")
	}
	s.name = review.Status.UserInfo.Username
	return s.name, nil
}
