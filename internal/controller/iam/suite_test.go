package iam_test

import (
	"os"
	"testing"

	"github.com/cafe-io/cafe/test/framework"
)

// One real kube-apiserver with CAFE's manager: the IAM controllers project
// onto real RBAC, which the API server's own authorizer then evaluates.
var suite framework.ControllerSuite

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }
