package ownwrites

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestBehindUntilTheCacheReachesTheWrite(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "cd"}
	other := types.NamespacedName{Namespace: "ns", Name: "other"}
	var tr Tracker
	if tr.Behind(key, "5") {
		t.Fatal("no write recorded: never behind")
	}
	tr.Wrote(key, "120")
	for _, tc := range []struct {
		cached string
		behind bool
	}{
		{"119", true},
		{"99", true}, // shorter is older, not lexically larger
		{"120", false},
		{"119", false}, // the record was dropped once the cache reached it
	} {
		if got := tr.Behind(key, tc.cached); got != tc.behind {
			t.Fatalf("Behind(%q) = %v, want %v", tc.cached, got, tc.behind)
		}
	}
	tr.Wrote(key, "200")
	if tr.Behind(other, "1") {
		t.Fatal("another object is not behind this one's write")
	}
	if tr.Behind(key, "1000") {
		t.Fatal("a later version includes the write")
	}
	tr.Wrote(key, "300")
	if tr.Behind(key, "not-a-number") {
		t.Fatal("an unparseable version is not called behind")
	}
	tr.Wrote(key, "400")
	tr.Forget(key)
	if tr.Behind(key, "1") {
		t.Fatal("a forgotten object is not behind")
	}
}
