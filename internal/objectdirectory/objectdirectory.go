// Package objectdirectory is CAFE's own directory, kept as Kubernetes
// objects: IAMUsers (an account, its password's bcrypt hash in a Secret of
// CAFE's namespace) and IAMGroups (members by name). It answers the login
// service as the LDAP directory does (package directory), so both sources
// feed the same mapping: a credential for dir:<user> in dir:<group>s.
package objectdirectory

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/directory"
)

// HashCost is the bcrypt cost of the hashes `cafe iam hash-password`
// writes: about a quarter of a second per guess on this machine's cores.
const HashCost = 12

// MaxPasswordLength is bcrypt's limit: it ignores what follows 72 bytes,
// so a longer password is refused rather than silently cut.
const MaxPasswordLength = 72

// namePattern is an IAMUser's name (a Kubernetes object name that is also a
// directory name).
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9.-]{0,63}$`)

// +kubebuilder:rbac:groups=cafe.io,resources=iamusers;iamgroups,verbs=get;list;watch

// Directory reads the objects. Users and groups are read through Objects
// (the manager's cache: a renewal every minute per user must not reach the
// API server); password Secrets through Secrets, uncached, so that CAFE
// holds no copy of its namespace's Secrets.
type Directory struct {
	Objects client.Reader
	Secrets client.Reader
	// Namespace is CAFE's: the password Secrets live there.
	Namespace string
}

// dummyHash is compared against when there is no hash to compare with, so
// that an unknown or disabled user costs a guesser as long as a wrong
// password (the answer's timing says nothing).
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such user"), HashCost)
	return h
})

// Authenticate checks user's password against the hash in their Secret and
// returns their groups. An unknown user, a disabled account, a missing or
// malformed hash and a wrong password are one error,
// directory.ErrInvalidCredentials.
func (d Directory) Authenticate(ctx context.Context, user, password string) (directory.Identity, error) {
	if password == "" || len(password) > MaxPasswordLength || !namePattern.MatchString(user) {
		return directory.Identity{}, directory.ErrInvalidCredentials
	}
	id, account, err := d.lookup(ctx, user)
	if err != nil {
		if errors.Is(err, directory.ErrInvalidCredentials) {
			_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		}
		return directory.Identity{}, err
	}
	hash, err := d.passwordHash(ctx, account)
	if err != nil {
		return directory.Identity{}, err
	}
	if hash == nil || id.Disabled {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return directory.Identity{}, directory.ErrInvalidCredentials
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return directory.Identity{}, directory.ErrInvalidCredentials
	}
	return id, nil
}

// Lookup returns the user as the objects say now (for a renewal):
// directory.ErrInvalidCredentials when there is no such user.
func (d Directory) Lookup(ctx context.Context, user string) (directory.Identity, error) {
	if !namePattern.MatchString(user) {
		return directory.Identity{}, directory.ErrInvalidCredentials
	}
	id, _, err := d.lookup(ctx, user)
	return id, err
}

func (d Directory) lookup(ctx context.Context, user string) (directory.Identity, *cafev1alpha1.IAMUser, error) {
	account := &cafev1alpha1.IAMUser{}
	if err := d.Objects.Get(ctx, client.ObjectKey{Name: user}, account); err != nil {
		if apierrors.IsNotFound(err) {
			return directory.Identity{}, nil, directory.ErrInvalidCredentials
		}
		return directory.Identity{}, nil, fmt.Errorf("%w: reading IAMUser %s: %v", directory.ErrUnreachable, user, err)
	}
	groups, err := d.groupsOf(ctx, user)
	if err != nil {
		return directory.Identity{}, nil, err
	}
	return directory.Identity{Name: user, Groups: groups, Disabled: account.Spec.Disabled}, account, nil
}

// groupsOf lists the IAMGroups naming user, sorted. Groups are few (a bank
// has tens, not thousands), and they come from the cache.
func (d Directory) groupsOf(ctx context.Context, user string) ([]string, error) {
	var all cafev1alpha1.IAMGroupList
	if err := d.Objects.List(ctx, &all); err != nil {
		return nil, fmt.Errorf("%w: listing IAMGroups: %v", directory.ErrUnreachable, err)
	}
	var groups []string
	for _, g := range all.Items {
		if slices.Contains(g.Spec.Members, user) {
			groups = append(groups, g.Name)
		}
	}
	slices.Sort(groups)
	return groups, nil
}

// passwordHash reads the account's hash; nil when its Secret or key is
// missing (the account cannot log in, which is not an outage).
func (d Directory) passwordHash(ctx context.Context, account *cafev1alpha1.IAMUser) ([]byte, error) {
	secret := &corev1.Secret{}
	err := d.Secrets.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: account.Spec.PasswordSecretName}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w: reading the password Secret of IAMUser %s: %v", directory.ErrUnreachable, account.Name, err)
	}
	hash := secret.Data[cafev1alpha1.IAMPasswordHashKey]
	if _, err := bcrypt.Cost(hash); err != nil {
		return nil, nil
	}
	return hash, nil
}

// HashPassword is the bcrypt hash to put under the "bcrypt" key of an
// IAMUser's password Secret.
func HashPassword(password []byte) ([]byte, error) {
	switch {
	case len(password) == 0:
		return nil, errors.New("the password is empty")
	case len(password) > MaxPasswordLength:
		return nil, fmt.Errorf("the password is longer than %d bytes (bcrypt would ignore the rest)", MaxPasswordLength)
	}
	return bcrypt.GenerateFromPassword(password, HashCost)
}
