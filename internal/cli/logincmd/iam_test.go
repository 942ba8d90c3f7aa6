package logincmd

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// hash-password prints the bcrypt hash of the first line of stdin, and
// nothing else (it goes straight into a Secret); an empty password is
// refused.
func TestHashPasswordPrintsABcryptHashOfStdin(t *testing.T) {
	out := &bytes.Buffer{}
	cmd := NewIAMCmd(genericiooptions.IOStreams{In: strings.NewReader("correct horse\nignored\n"), Out: out, ErrOut: &bytes.Buffer{}})
	cmd.SetArgs([]string{"hash-password", "--password-stdin"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword(out.Bytes(), []byte("correct horse")); err != nil {
		t.Fatalf("the output %q is not the hash of the first line: %v", out, err)
	}
	if strings.ContainsAny(out.String(), "\n ") {
		t.Fatalf("the output %q holds more than the hash", out)
	}

	cmd = NewIAMCmd(genericiooptions.IOStreams{In: strings.NewReader("\n"), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	cmd.SetArgs([]string{"hash-password", "--password-stdin"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("an empty password: %v", err)
	}
}
